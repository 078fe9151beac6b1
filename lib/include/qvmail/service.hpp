// The environment variables of the MTA's services, kept as daemontools' envdir reads them: one file a
// variable in $SERVICEDIR/<service>/variables/ (IndiMail: /service/qmail-send.25/variables/), holding
// the value on its first line.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qv {

struct Paths;

constexpr std::string_view kSendService = "qmail-send";

std::filesystem::path service_variable_file(const Paths& paths, std::string_view service, std::string_view name);
// The value an envdir gives the variable: the file's first line, trailing blanks removed, NULs as line
// ends; nullopt when the file is missing (left as inherited) or empty (envdir removes the variable).
std::optional<std::string> read_service_variable(const Paths& paths, std::string_view service, std::string_view name);
// The variables of the service's directory, by name, each as read_service_variable gives it (nullopt:
// envdir would remove it); files whose names start with '.' are skipped. Empty when there is no
// directory. The programs set those their environment does not set itself.
std::map<std::string, std::optional<std::string>> service_variables(const Paths& paths, std::string_view service);
// Writes (atomically) or removes the file; the caller holds the admin lock. unset throws Error 6 when
// there is no file. Return the steps.
std::vector<std::string> set_service_variable(const Paths& paths, std::string_view service, std::string_view name,
                                              std::string_view value, bool dry_run);
std::vector<std::string> unset_service_variable(const Paths& paths, std::string_view service, std::string_view name,
                                                bool dry_run);

}  // namespace qv
