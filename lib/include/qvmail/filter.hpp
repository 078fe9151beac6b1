// Mail filters: IndiMail's vfilter rules, which vcfilter edits and vfilter applies at delivery.
//
// A rule matches a header of the message against a keyword with one of eight comparisons, and then
// files the message into a folder (or Inbox, or nowhere: /NoDeliver) and may bounce it to its sender
// or send a copy on to an address or a program. Rules belong to an address; those of the pseudo-users
// prefilt@domain and postfilt@domain apply to every mailbox of the domain, before and after its own.
// Evaluation order: prefilt, the address's own rules, postfilt, each by number; the first rule that
// matches decides. The engine here only decides; delivering is the MTA's work.
//
// Where qvmail differs from IndiMail (decisions in ../shared/reference/indimail-admin.md):
//   - comparisons use IndiMail's current (2023) numbering 0-7; Equals is true equality and Ends with a
//     true suffix (IndiMail compares a prefix, and looks for the keyword anywhere);
//   - postfilt rules apply whether or not the user has rules of his own;
//   - "My id not in To, CC, Bcc" in a prefilt or postfilt rule means the recipient's address (IndiMail
//     skips such rules);
//   - a numerical expression or regular expression that fails (not a number, division by zero, the
//     regex limits) does not match (IndiMail counts an evaluation error as a match).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "qvmail/address.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/store.hpp"

namespace qv {

struct Message;
struct Paths;

// ---- the header list ----
// Rules store a header as a number: an index into this list. The list is data shipped with qvmail
// (data/headerlist, compiled in): version 1 holds IndiMail's headerlist, 47 names in IndiMail's order,
// so numbers written by IndiMail mean the same here. Later versions only ever append; a site may
// append names of its own in etc/headerlist (QMAILHOME/etc, as IndiMail's SYSCONFDIR/headerlist),
// which must agree with the shipped list for every number both have.
constexpr int kHeaderListVersion = 1;

class HeaderList {
public:
    static const HeaderList& builtin();
    // The shipped list, extended by etc/headerlist when there is one. Throws Error 78 naming the file and
    // line for a file that renumbers a shipped name.
    static HeaderList load(const Paths& paths);
    // The shipped list extended by the text of a site file.
    static HeaderList extend(const HeaderList& base, std::string_view text, const std::filesystem::path& file);

    int size() const noexcept { return static_cast<int>(names_.size()); }
    // The number of a header name (any spelling the list gives, without regard to case).
    std::optional<int> number(std::string_view name) const;
    // The name of a number; "" when out of range.
    std::string_view name(int number) const;
    const std::string& source() const noexcept { return source_; }  // "built-in (version 1)" or a file

private:
    std::vector<std::vector<std::string>> names_;  // per number: the name shown, then other spellings
    std::unordered_map<std::string, int> index_;   // lower-cased spelling -> number
    std::string source_;
    void add(std::vector<std::string> spellings);
};

// ---- comparisons and actions ----
enum class Comparison : int {
    equals = 0,
    contains = 1,
    not_contains = 2,
    starts_with = 3,
    ends_with = 4,
    not_my_id = 5,  // the recipient's address is in none of To, Cc and Bcc; no header, no keyword
    numeric = 6,    // a numerical logical expression over %p (expression.hpp)
    regex = 7,      // a PCRE2 regular expression (regex.hpp), caseless and unanchored
};
constexpr int kComparisonCount = 8;
std::string_view comparison_name(Comparison c) noexcept;  // IndiMail's text: "Equals", "Does not contain", ...
std::string_view comparison_slug(Comparison c) noexcept;  // "equals", "not-contains", ...: for scripts
// A number, IndiMail's text or the slug, without regard to case; "My id not in To/CC/Bcc" too.
std::optional<Comparison> parse_comparison(std::string_view text);

// A rule's bounce_action.
struct BounceAction {
    bool bounce = false;  // 1 and 3: bounce the message to its sender
    enum Forward { none, address, program } forward = none;
    std::string target;  // the address or the program line of 2 and 3
};
// Throws Error 65 naming the problem.
BounceAction parse_bounce_action(std::string_view text);
// "deliver", "bounce", "forward to x@y", "bounce, pipe to /usr/bin/prog"
std::string describe_bounce_action(std::string_view text);

// The folder names of IndiMail: Inbox and /NoDeliver (any case) are written that way.
constexpr std::string_view kInbox = "Inbox";
constexpr std::string_view kNoDeliver = "/NoDeliver";

// Limits of IndiMail's vfilter columns, in characters.
constexpr std::size_t kFilterNameMax = 32, kFilterKeywordMax = 64, kFilterFolderMax = 156, kFilterActionMax = 64,
                      kFilterEmailMax = 107;
constexpr int kMaxFiltersPerAddress = 255;

// Checks a folder (-f) and writes Inbox and /NoDeliver so. Throws Error 65.
void check_filter_folder(std::string& folder);
// Checks a rule as vcfilter takes it, and normalises it: Inbox and /NoDeliver spelt so, comparison 5's
// header -1 and empty keyword. Throws Error 65 naming the field (-t, -h, -c, -k, -f, -b).
void check_filter_rule(FilterRule& r, const HeaderList& headers);

// Whether two rules of one address test the same thing: the vfilter table's unique index (header,
// comparison, keyword, folder), compared without regard to case as its collation does.
bool same_filter_test(const FilterRule& a, const FilterRule& b);

bool is_filter_pseudo_user(std::string_view local) noexcept;  // prefilt, postfilt
// IndiMail takes no filters for these local parts (its rfc_ids): postmaster, abuse, mailer-daemon,
// spam, nonspam, register-spam, register-nonspam. IndiMail tests them as prefixes of the address, which
// also refuses spamreport@ and abuser@; qvmail tests the whole local part. Returns the reserved name.
std::optional<std::string_view> reserved_filter_local(std::string_view local) noexcept;

// ---- the rules file of the files store: <domain dir>/vfilter/<local> ----
// One rule a line, seven TAB-separated fields as the table's columns:
//   number name header comparison keyword folder action
// No field holds a TAB or a line end (check_filter_rule refuses control characters), so values are
// stored as they are: quotes and backslashes included.
std::string format_filter_file(const std::vector<FilterRule>& rules);
std::vector<FilterRule> parse_filter_file(std::string_view text, const std::filesystem::path& file);

// ---- the engine ----
enum class FilterStage { prefilt, user, postfilt };
const char* to_string(FilterStage s) noexcept;

struct FilterSet {
    FilterStage stage = FilterStage::user;
    std::string address;  // whose rules: prefilt@domain, user@domain, postfilt@domain
    std::vector<FilterRule> rules;
    std::string skipped;  // why the set does not apply (e.g. "Maildir/noprefilt exists"); empty: it does
};

struct RuleTrace {
    FilterStage stage;
    std::string address;
    FilterRule rule;
    enum Outcome { matched, no_match, absent, skipped, failed } outcome = no_match;
    std::string detail;  // the field that matched, or why the rule was skipped or failed
};
const char* to_string(RuleTrace::Outcome o) noexcept;

struct FilterDecision {
    bool matched = false;
    FilterStage stage = FilterStage::user;  // the matching rule's set
    std::string address;
    FilterRule rule;
    enum class Delivery { inbox, folder, discard } delivery = Delivery::inbox;
    std::string folder;  // with `folder`
    BounceAction action;
    std::vector<RuleTrace> trace;    // every rule tried, when asked for
    std::vector<std::string> notes;  // the sets skipped, and why
};
// "deliver to folder Spam, then bounce to the sender", "no rule matched: deliver to Inbox"
std::string describe_decision(const FilterDecision& d);

// The rule sets, compiled once (keywords folded, regular expressions and expressions compiled) and
// applied to any number of messages. A rule that cannot be applied (a header number the list does not
// have, a comparison out of range, a pattern that does not compile) is skipped, never fatal.
class FilterEngine {
public:
    FilterEngine(std::vector<FilterSet> sets, const HeaderList& headers);
    ~FilterEngine();
    FilterEngine(FilterEngine&&) noexcept;

    // `my_addresses`: the recipient's address(es), lower case, for comparison 5.
    FilterDecision evaluate(const Message& m, const std::vector<std::string>& my_addresses,
                            bool with_trace = false) const;

private:
    struct Compiled;
    std::vector<FilterSet> sets_;
    std::unique_ptr<Compiled> compiled_;
    HeaderList headers_;
};

// The sets that apply to a mailbox, in order: prefilt@domain (skipped when <maildir>/noprefilt exists),
// the address's own rules, postfilt@domain (skipped when <maildir>/nopostfilt exists).
std::vector<FilterSet> filter_chain(Store& store, const Domain& d, std::string_view local,
                                    const std::optional<std::filesystem::path>& maildir);

// ---- administration: vcfilter ----
struct FilterOwner {
    Domain domain;
    std::string local;
    std::optional<UserRecord> mailbox;  // none for prefilt and postfilt
    std::string address() const { return local + "@" + domain.name; }
};
// Checks that an address may have filters: not reserved (65), its domain exists (68), and it is a
// mailbox (67) or prefilt/postfilt.
FilterOwner filter_owner(const Paths& paths, Store& store, const Address& a);

// The caller holds the admin lock. Each change is one transaction; a dry run only reports it.
// add: the lowest free number from 1 (0 for comparison 5); Error 9 when the address has a rule with
// the same header, comparison, keyword and folder (or a comparison 5 rule already); Error 65 at 255
// rules. On a mailbox's first rule, <home>/Maildir/vfilter is created, as IndiMail's vcfilter does
// (IndiMail's vfilter reads an address's rules only when it exists); it goes with the last rule.
FilterRule add_filter(Store& store, const FilterOwner& o, FilterRule rule, const HeaderList& headers, bool dry_run,
                      ChangeReport* report = nullptr);
struct FilterUpdate {
    std::optional<std::string> name;
    std::optional<int> header;
    std::optional<int> comparison;
    std::optional<std::string> keyword;
    std::optional<std::string> folder;
    std::optional<std::string> action;
    bool empty() const { return !name && !header && !comparison && !keyword && !folder && !action; }
};
// Changes the fields given; Error 6 when the rule does not exist, 9 for a duplicate, 64 for a change
// into or out of comparison 5 (whose rule is always number 0).
FilterRule update_filter(Store& store, const FilterOwner& o, int number, const FilterUpdate& u,
                         const HeaderList& headers, bool dry_run, ChangeReport* report = nullptr);
// Error 6 when the rule does not exist.
FilterRule delete_filter(Store& store, const FilterOwner& o, int number, bool dry_run, ChangeReport* report = nullptr);

}  // namespace qv
