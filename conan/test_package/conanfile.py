"""conan create's check of the pmrkit package: consumers built against it.

test_package links the component core (pmrkit::pmrkit) alone and must link no
Boost library (checked with readelf where there is one); test_package_boost
links the component boost (pmrkit::boost); test_package_cuda, built when the
package has the component cuda (-o with_cuda=True), links pmrkit::cuda.
"""

import io
import os
import shutil

from conan import ConanFile
from conan.errors import ConanException
from conan.tools.build import can_run
from conan.tools.cmake import CMake, cmake_layout


class PmrkitTestConan(ConanFile):
    settings = "os", "arch", "compiler", "build_type"
    generators = "CMakeDeps", "CMakeToolchain"
    test_type = "explicit"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        cmake_layout(self)

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def test(self):
        if not can_run(self):
            return
        core = os.path.join(self.cpp.build.bindir, "test_package")
        self.run(core, env="conanrun")
        self.run(os.path.join(self.cpp.build.bindir, "test_package_boost"), env="conanrun")
        # Built only against a package with -o with_cuda=True (pmrkit::cuda).
        cuda = os.path.join(self.cpp.build.bindir, "test_package_cuda")
        if os.path.exists(cuda):
            self.run(cuda, env="conanrun")
        if shutil.which("readelf"):
            dynamic = io.StringIO()
            self.run(f"readelf -d {core}", stdout=dynamic)
            needed = [line for line in dynamic.getvalue().splitlines() if "(NEEDED)" in line]
            if any("boost" in line.lower() for line in needed):
                raise ConanException("test_package (pmrkit::pmrkit alone) links Boost:\n" +
                                     "\n".join(needed))
            self.output.info("test_package links no Boost library")
