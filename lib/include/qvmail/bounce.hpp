// qmail-send's bounce hooks (IndiMail), and the service variables that hold them.
//
//   BOUNCEPROCESSOR  a program run for every bounce, before it is injected, with five arguments (as
//                    IndiMail's published description gives them; IndiMail's code passes the queued
//                    message file first, a sixth): bounce_file bounce_report bounce_sender
//                    original_recipient bounce_recipient. Exit 0: the bounce is injected; 1: it is
//                    discarded; anything else (or a crash): it is tried again later.
//   BOUNCEQUEUE      the program that queues bounces (QMAILQUEUE for their injection only), e.g.
//                    qmail-nullqueue to drop every bounce.
//   bounce.envrules  per bounce recipient (the original sender) variables: see envrules.hpp. The file is
//                    control/bounce.envrules, or the one BOUNCERULES names.
// The two variables live where IndiMail keeps them, as envdir files of the sending service:
// $SERVICEDIR/qmail-send/variables/<NAME> (IndiMail: /service/qmail-send.25/variables/).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qvmail/envrules.hpp"

namespace qv {

struct Paths;

constexpr std::string_view kSendService = "qmail-send";

// ---- service variables (envdir) ----
std::filesystem::path service_variable_file(const Paths& paths, std::string_view service, std::string_view name);
// The value an envdir gives the variable: the file's first line, trailing blanks removed, NULs as line
// ends; nullopt when the file is missing (left as inherited) or empty (envdir removes the variable).
std::optional<std::string> read_service_variable(const Paths& paths, std::string_view service, std::string_view name);
// Writes (atomically) or removes the file; the caller holds the admin lock. unset throws Error 6 when
// there is no file. Return the steps.
std::vector<std::string> set_service_variable(const Paths& paths, std::string_view service, std::string_view name,
                                              std::string_view value, bool dry_run);
std::vector<std::string> unset_service_variable(const Paths& paths, std::string_view service, std::string_view name,
                                                bool dry_run);

// A program for BOUNCEPROCESSOR or BOUNCEQUEUE: an absolute path to an executable regular file. Throws
// Error 65 naming the problem.
void check_bounce_program(std::string_view path);

// ---- bounce.envrules ----
// Regular expressions when QREGEX is set in this environment or among qmail-send's variables (where it
// applies to bounces); wildmat patterns otherwise.
PatternKind bounce_rules_kind(const Paths& paths);
// Appends a rule; throws Error 65 for a malformed one, 9 when the file has this line already.
std::vector<std::string> add_bounce_rule(const Paths& paths, std::string_view pattern,
                                         const std::vector<EnvAssignment>& env, bool dry_run);
// Removes the rule on line `line`; throws Error 6 when that line is not a rule. Returns the steps.
std::vector<std::string> remove_bounce_rule(const Paths& paths, std::uint64_t line, bool dry_run);

// ---- at bounce time (qmail-send) ----
struct BounceReport {
    std::string bounce_file;         // the bounce being built
    std::string report;              // the failure text
    std::string sender;              // the bounce's own sender: "" or #@[] for a double bounce
    std::string original_recipient;  // the recipient that failed
    std::string bounce_recipient;    // where the bounce goes: the original envelope sender
};
// BOUNCEPROCESSOR's argv: the program and the five arguments.
std::vector<std::string> bounce_processor_argv(const std::string& processor, const BounceReport& b);
enum class BounceVerdict { inject, discard, retry };
// From the processor's wait(2) status.
BounceVerdict bounce_processor_verdict(int wait_status) noexcept;
const char* to_string(BounceVerdict v) noexcept;
// The environment a bounce is injected with, changed in place: QMAILQUEUE from BOUNCEQUEUE when that is
// set; SPAMFILTER and FILTERARGS unset; then the envrules that match the bounce recipient (so that a rule
// can still choose another queue for some senders). Returns the envrules' changes.
std::vector<EnvChange> bounce_injection_environment(std::map<std::string, std::string>& env,
                                                    const std::vector<EnvRule>& rules,
                                                    std::string_view bounce_recipient, PatternKind kind);

}  // namespace qv
