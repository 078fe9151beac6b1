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
#include <ctime>
#include <utility>
#include <vector>

#include "qvmail/envrules.hpp"
#include "qvmail/service.hpp"

namespace qv {

struct Paths;

// A program for BOUNCEPROCESSOR or BOUNCEQUEUE: an absolute path to an executable regular file. Throws
// Error 65 naming the problem.
void check_bounce_program(std::string_view path);

// ---- bounce.envrules ----
struct BounceRulesSetting {
    std::filesystem::path file;
    std::string file_source;  // "the default", "BOUNCERULES of qmail-send", "BOUNCERULES in this environment"
    PatternKind kind = PatternKind::wildmat;
    std::string kind_source;  // "no QREGEX", "QREGEX of qmail-send", "QREGEX in this environment"
};
// Where qmail-send finds its bounce rules and how it reads their patterns: BOUNCERULES and QREGEX as
// qmail-send's variables set them, unless this environment sets them (to try a setting). BOUNCERULES
// names a file: absolute, "./name" under QMAILHOME (as IndiMail, whose qmail-send works there), or a name
// under CONTROLDIR. Throws Error 78 for a relative name with a ".." part.
BounceRulesSetting bounce_rules_setting(const Paths& paths);
// Appends a rule; throws Error 65 for a malformed one (and for an empty regular expression, which
// matches every sender: the null sender is written <>), 9 when the file has this line already.
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
    std::string bounce_recipient;    // where the bounce goes: the original sender, or the doublebounceto
                                     // address for a bounce of a bounce
};
// BOUNCEPROCESSOR's argv: the program and the five arguments.
std::vector<std::string> bounce_processor_argv(const std::string& processor, const BounceReport& b);
enum class BounceVerdict { inject, discard, retry };
// From the processor's wait(2) status.
BounceVerdict bounce_processor_verdict(int wait_status) noexcept;
const char* to_string(BounceVerdict v) noexcept;
// The environment a bounce is injected with, changed in place: QMAILQUEUE from BOUNCEQUEUE when that is
// set; SPAMFILTER and FILTERARGS unset; then the envrules that match the original envelope sender of the
// failed message ("" for a bounce of a bounce, which <> rules catch), as IndiMail's qmail-send matches
// them, so that a rule can still choose another queue for some senders. Returns the envrules' changes.
std::vector<EnvChange> bounce_injection_environment(std::map<std::string, std::string>& env,
                                                    const std::vector<EnvRule>& rules, std::string_view original_sender,
                                                    PatternKind kind);

// ---- the bounce message (QSBMF, as qmail-send writes it) ----
// A failed recipient's paragraph as qmail-send appends it to bounce/N: "<recipient>:" on a line, the
// report with every line ended and an empty line inside written "/", then an empty line.
std::string bounce_paragraph(std::string_view recipient, std::string_view report);
// BOUNCEPROCESSOR's original_recipient and bounce_report from bounce/N: the first recipient (without
// its <>) and the text after the first ':' (leading blanks skipped).
std::pair<std::string, std::string> split_bounce_file(std::string_view content);
struct BounceHead {
    std::string from;        // MAILER-DAEMON@<bouncehost> (control/bouncefrom, control/bouncehost)
    std::string to;          // the original sender, or doublebounceto@doublebouncehost
    std::string host;        // bouncehost: "This is the qmail-send program at <host>."
    bool double_bounce = false;  // the failed message was a bounce itself
};
// The bounce's header and text, up to and including the break line and the blank line after it; the
// copy of the failed message ("Return-Path: <sender>" and the queued message) follows.
std::string bounce_message_head(const BounceHead& h, std::string_view paragraphs, std::time_t now);

}  // namespace qv
