// docs/errors.md and errors_test cannot drift: every test the doc's tables name exists in this
// executable, and every test of this executable (but these) is named by exactly one row. The
// shm rows exist only with PMRKIT_WITH_SHM, the CUDA rows only with the component pmrkit::cuda.
#include <pmr/core/config.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef PMRKIT_ERRORS_CUDA
#define PMRKIT_ERRORS_CUDA 0
#endif

namespace {

// "Suite.Name" of each table row's last cell (`Suite.Name`), counted.
std::map<std::string, int> tests_named_by_doc() {
  std::ifstream file(PMRKIT_ERRORS_DOC);
  EXPECT_TRUE(file.good()) << "cannot read " << PMRKIT_ERRORS_DOC;
  std::map<std::string, int> named;
  const std::regex test_name("^`([A-Z][A-Za-z]*\\.[A-Z][A-Za-z]*)`$");
  std::string line;
  while (std::getline(file, line)) {
    if (line.empty() || line.front() != '|' || line.starts_with("|---")) continue;
    std::string trimmed = line.substr(0, line.find_last_not_of(" |") + 1);
    std::string cell = trimmed.substr(trimmed.find_last_of('|') + 1);
    cell.erase(0, cell.find_first_not_of(' '));
    std::smatch match;
    if (std::regex_match(cell, match, test_name)) ++named[match[1].str()];
  }
  return named;
}

std::set<std::string> tests_in_this_executable() {
  std::set<std::string> all;
  const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
  for (int i = 0; i < unit.total_test_suite_count(); ++i) {
    const ::testing::TestSuite& suite = *unit.GetTestSuite(i);
    for (int j = 0; j < suite.total_test_count(); ++j)
      all.insert(std::string(suite.name()) + "." + suite.GetTestInfo(j)->name());
  }
  return all;
}

bool built_here(const std::string& test) {
  if (test.starts_with("Shm.")) return PMRKIT_HAS_SHM != 0;
  if (test.starts_with("Cuda.")) return PMRKIT_ERRORS_CUDA != 0;
  return true;
}

TEST(ErrorsDoc, EveryRowNamesATestOfThisExecutable) {
  const std::map<std::string, int> named = tests_named_by_doc();
  EXPECT_GT(named.size(), 40u) << "the doc's tables were not found";
  const std::set<std::string> tests = tests_in_this_executable();
  for (const auto& [test, count] : named) {
    EXPECT_EQ(count, 1) << test << " is named by " << count << " rows";
    if (built_here(test)) {
      EXPECT_TRUE(tests.contains(test)) << "docs/errors.md names " << test << ", no such test";
    }
  }
}

TEST(ErrorsDoc, EveryTestHasARow) {
  const std::map<std::string, int> named = tests_named_by_doc();
  for (const std::string& test : tests_in_this_executable()) {
    if (test.starts_with("ErrorsDoc.")) continue;
    EXPECT_TRUE(named.contains(test)) << test << " has no row in docs/errors.md";
  }
}

}  // namespace
