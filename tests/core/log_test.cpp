#include <pmr/core/log.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

std::vector<std::pair<pmrkit::log_level, std::string>> messages;

void record(pmrkit::log_level level, std::string_view message) {
  messages.emplace_back(level, std::string(message));
}

TEST(LogHook, InstalledHandlerReceivesEveryMessage) {
  messages.clear();
  const pmrkit::log_handler previous = pmrkit::set_log_handler(&record);
  EXPECT_EQ(previous, &pmrkit::default_log_handler);
  pmrkit::log(pmrkit::log_level::warning, "virtual arena unavailable, using chunked");
  pmrkit::log(pmrkit::log_level::debug, "detail");
  EXPECT_EQ(pmrkit::set_log_handler(nullptr), &record);
  ASSERT_EQ(messages.size(), 2U);
  EXPECT_EQ(messages[0].first, pmrkit::log_level::warning);
  EXPECT_EQ(messages[0].second, "virtual arena unavailable, using chunked");
  EXPECT_EQ(pmrkit::get_log_handler(), &pmrkit::default_log_handler);
}

TEST(LogHook, DefaultPrintsWarningsToStderrAndDropsDebug) {
  testing::internal::CaptureStderr();
  pmrkit::log(pmrkit::log_level::warning, "fell back");
  pmrkit::log(pmrkit::log_level::info, "quiet");
  const std::string printed = testing::internal::GetCapturedStderr();
  EXPECT_EQ(printed, "pmrkit: warning: fell back\n");
}

}  // namespace
