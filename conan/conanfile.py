"""Conan 2 recipe for pmrkit.

The recipe sits in conan/ beside its test_package/; the sources it packages are
the repository around it (CMakeLists.txt, cmake/, include/, src/), exported by
export_sources(). The version is the one in the top-level CMakeLists.txt's
project() call, so there is a single place to bump it.

    conan create conan --profile:all=conan/profiles/debian --build=missing

conan/profiles/debian satisfies Boost with Debian's own packages
([platform_requires] boost/1.81.0), so nothing is fetched; see conan/README.md.

Components: `core` (the library pmrkit, target pmrkit::pmrkit, pkg-config
pmrkit), which needs no Boost, `boost` (the Boost.Container bridge, the
library pmrkit_boost, target pmrkit::boost, pkg-config pmrkit-boost), which
requires core and Boost.Container, and with `-o with_cuda=True` `cuda` (the
CUDA page sources, the library pmrkit_cuda, target pmrkit::cuda, pkg-config
pmrkit-cuda), which requires core and the system's CUDA runtime (cudart). A
consumer that links pmrkit::pmrkit alone links no Boost and no CUDA library.
"""

import os
import re

from conan import ConanFile
from conan.errors import ConanException
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load, rmdir

required_conan_version = ">=2.0"


class PmrkitConan(ConanFile):
    name = "pmrkit"
    description = "std::pmr::memory_resource strategies and decorators"
    topics = ("memory-resource", "allocator", "pmr", "arena", "pool")
    package_type = "library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "shared": [True, False],
        "fPIC": [True, False],
        # The CUDA page sources (cuda_pinned_resource, cuda_registered_resource):
        # True builds the component `cuda` (the library pmrkit_cuda, target
        # pmrkit::cuda) with PMRKIT_WITH_CUDA=ON, which needs the CUDA toolkit on
        # the build machine (found as find_package(CUDAToolkit) finds it; the
        # conf user.pmrkit:cuda_root or CUDA_PATH names another place) and its
        # runtime (libcudart) where consumers run. No GPU is needed to build.
        "with_cuda": [True, False],
    }
    default_options = {
        "shared": False,
        "fPIC": True,
        "with_cuda": False,
    }

    # The sources live one level up from this recipe.
    _source_patterns = ("CMakeLists.txt", "cmake/*", "include/*", "src/*", "LICENSE*")

    def set_version(self):
        # Called from the user folder (conan create/export/install on this
        # directory): read `project(pmrkit VERSION x.y.z ...)`.
        cmakelists = load(self, os.path.join(self.recipe_folder, "..", "CMakeLists.txt"))
        match = re.search(r"project\s*\(\s*pmrkit\b[^)]*?\bVERSION\s+([0-9]+(?:\.[0-9]+)*)",
                          cmakelists, re.DOTALL)
        if not match:
            raise ConanException("pmrkit: no project(pmrkit VERSION ...) in CMakeLists.txt")
        self.version = self.version or match.group(1)

    def export_sources(self):
        root = os.path.join(self.recipe_folder, "..")
        for pattern in self._source_patterns:
            copy(self, pattern, src=root, dst=self.export_sources_folder)

    def config_options(self):
        if self.settings.os == "Windows":
            del self.options.fPIC

    def configure(self):
        if self.options.shared:
            self.options.rm_safe("fPIC")

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        # Boost.Container, for the component `boost` only (pmrkit_boost links
        # Boost::container publicly; the core library needs no Boost). Any Boost
        # from 1.81 on, as the CMake find_package(Boost 1.81 ...) accepts; the
        # debian profile maps it to the system's 1.81.0 with platform_requires.
        self.requires("boost/[>=1.81.0 <2]", transitive_headers=True, transitive_libs=True)

    def validate(self):
        check_min_cppstd(self, 20)

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["PMRKIT_BUILD_TESTS"] = False
        tc.cache_variables["PMRKIT_BUILD_BENCH"] = False
        tc.cache_variables["PMRKIT_BUILD_EXAMPLES"] = False
        # The trace and replay tools (tools/) are not packaged: the recipe ships the libraries.
        tc.cache_variables["PMRKIT_BUILD_TOOLS"] = False
        tc.cache_variables["PMRKIT_INSTALL"] = True
        tc.cache_variables["PMRKIT_WITH_BOOST"] = True
        # A package is built by compilers the project's CI never saw: their new
        # warnings must not fail the package (CI builds with -Werror).
        tc.cache_variables["PMRKIT_WARNINGS_AS_ERRORS"] = False
        tc.cache_variables["PMRKIT_WITH_CUDA"] = "ON" if self.options.with_cuda else "OFF"
        if self.options.with_cuda and self._cuda_root():
            tc.cache_variables["CUDAToolkit_ROOT"] = self._cuda_root()
        tc.generate()
        # A Conan-built Boost gets its Boost-config.cmake from CMakeDeps; a
        # platform_requires Boost gets none, and find_package(Boost CONFIG)
        # finds the system's (/usr/lib/<triplet>/cmake/Boost-1.81.0).
        deps = CMakeDeps(self)
        deps.generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        copy(self, "LICENSE*", src=self.source_folder, dst=os.path.join(self.package_folder, "licenses"))
        cmake = CMake(self)
        cmake.install()
        # Conan consumers get CMake and pkg-config files generated from
        # package_info() (CMakeDeps, PkgConfigDeps); the installed ones would
        # only compete with them.
        rmdir(self, os.path.join(self.package_folder, "lib", "cmake"))
        rmdir(self, os.path.join(self.package_folder, "lib", "pkgconfig"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "pmrkit")
        # The root target aggregates both components; pmrkit::pmrkit is the
        # core alone, as in pmrkit's own CMake package.
        self.cpp_info.set_property("cmake_target_name", "pmrkit::all")
        # Components come first: core's pmrkit.pc takes the place of the root's.
        self.cpp_info.set_property("pkg_config_name", "pmrkit")

        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "pmrkit::pmrkit")
        core.set_property("pkg_config_name", "pmrkit")
        core.libs = ["pmrkit"]
        if self.settings.os in ("Linux", "FreeBSD"):
            core.system_libs.append("pthread")

        bridge = self.cpp_info.components["boost"]
        bridge.set_property("cmake_target_name", "pmrkit::boost")
        bridge.set_property("pkg_config_name", "pmrkit-boost")
        bridge.libs = ["pmrkit_boost"]
        bridge.requires = ["core"]
        if self._boost_from_platform():
            # Conan's generators leave a [platform_requires] package out
            # entirely (no find_dependency(Boost), no Boost::container in
            # pmrkit::boost's link interface), so a consumer would miss the
            # library: name the system's one here. Its headers are in the
            # system include path already.
            bridge.system_libs.append("boost_container")
        else:
            bridge.requires.append("boost::container")

        if self.options.with_cuda:
            # The CUDA runtime is a system dependency (the toolkit is no Conan
            # package here): named as a system lib, with the toolkit's include
            # and library folders, so CMakeDeps and PkgConfigDeps consumers link
            # it without looking for the toolkit themselves.
            cuda = self.cpp_info.components["cuda"]
            cuda.set_property("cmake_target_name", "pmrkit::cuda")
            cuda.set_property("pkg_config_name", "pmrkit-cuda")
            cuda.libs = ["pmrkit_cuda"]
            cuda.requires = ["core"]
            cuda.system_libs = ["cudart"]
            root = self._cuda_root()
            if root:
                cuda.includedirs = ["include", os.path.join(root, "include")]
                cuda.libdirs = ["lib"] + [os.path.join(root, d) for d in ("lib64", "lib")
                                          if os.path.isdir(os.path.join(root, d))]

    def _cuda_root(self):
        # Where the CUDA toolkit is: the conf user.pmrkit:cuda_root, CUDA_PATH,
        # or /usr/local/cuda when it exists; None leaves it to CMake's search.
        root = self.conf.get("user.pmrkit:cuda_root") or os.environ.get("CUDA_PATH")
        if not root and os.path.isdir("/usr/local/cuda"):
            root = "/usr/local/cuda"
        return root

    def _boost_from_platform(self):
        # self.dependencies leaves out what [platform_requires] resolved, and
        # this recipe always requires boost: absent means from the platform.
        return "boost" not in self.dependencies.host
