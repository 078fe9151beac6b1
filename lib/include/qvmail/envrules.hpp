// IndiMail's envrules: control files of lines `pattern:VAR=value,VAR2=value,...` that set (or, with an
// empty value, unset) environment variables for the addresses a pattern matches. qmail-send applies
// bounce.envrules to the recipient of each bounce (the original sender); qmail-smtpd and spawn-filter have
// siblings (from.envrules, rcpt.envrules) in the same format.
//
//   - The pattern is everything before the first ':'. By default it is a wildmat pattern (Rich Salz's, as
//     IndiMail's libqmail: anchored, case-sensitive, `*` `?` `[...]` `[^...]` and `\` escapes); when QREGEX
//     is set it is a regular expression (PCRE2, caseless, unanchored, under the limits of regex.hpp).
//   - The null sender (an empty address, written <> by qvmail's commands) matches a pattern that is empty
//     or `<>`.
//   - Assignments are separated by ','; `\,` is a comma inside a value; blanks before a name are skipped;
//     `VAR=` unsets VAR.
//   - Every matching line applies, in the order of the file; a later assignment wins.
// Where IndiMail is lax, qvmail is strict when a line is written (`qmailctl bounce rules add` refuses it,
// `qmailctl check` reports it with its line): a line without ':', an item that is not VAR=value, a
// variable name that is not [A-Za-z_][A-Za-z0-9_]*, an unclosed '[' or a trailing '\' in a wildmat
// pattern, a regular expression that does not compile. At delivery such a line is skipped (IndiMail's
// reader skips every line after one without ':').
// Other differences from IndiMail's parse_env and wildmat, for lines IndiMail reads oddly: blanks before
// a name are skipped for an unset too (IndiMail unsets " B", nothing); the character after an escaped
// comma is kept (IndiMail drops it: "A=1\,,B=2" sets A to "1,,B=2" there, A=1, and B=2 here); a last
// item "A=x=" sets A to "x=" (IndiMail unsets "A=x", nothing); character ranges compare bytes unsigned
// (IndiMail's signed chars make a range such as [a-\xff] match nothing).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qv {

// Whether `text` matches the wildmat `pattern` as a whole. A malformed pattern (unclosed '[', trailing
// '\') matches nothing. Linear in the product of the lengths at worst (no exponential backtracking).
bool wildmat(std::string_view pattern, std::string_view text) noexcept;
// Why a wildmat pattern is malformed, or nullopt.
std::optional<std::string> wildmat_problem(std::string_view pattern);

struct EnvAssignment {
    std::string name;
    std::optional<std::string> value;  // nullopt: unset the variable
    bool operator==(const EnvAssignment&) const = default;
};

class Regex;

struct EnvRule {
    std::uint64_t line = 0;  // in its file (0: not from a file)
    std::string pattern;
    std::vector<EnvAssignment> env;
    std::string text;                    // the line as written
    std::shared_ptr<const Regex> regex;  // the pattern compiled, when read as a regular expression
};

enum class PatternKind { wildmat, regex };
const char* to_string(PatternKind k) noexcept;  // "wildmat", "regex (QREGEX)"

// Reads one line. Throws Error 65 naming the problem (not the file: see load_envrules).
EnvRule parse_envrule(std::string_view line, PatternKind kind);
// The line for a pattern and assignments; commas in values written `\,`. Throws Error 65 for what a line
// cannot hold (a ':' or a line end in the pattern, or a pattern starting with '#'; a line end in a value,
// or a '\' or blank at its end).
std::string format_envrule(std::string_view pattern, const std::vector<EnvAssignment>& env);
// Parses VAR=VALUE (VAR= to unset) as given on a command line. Throws Error 65.
EnvAssignment parse_assignment(std::string_view text);

// The rules of a file, skipping comments ('#') and blank lines. A missing file has none. With `problems`,
// malformed lines are skipped and reported there ("file:line: why: text"); without, the first throws
// ParseError.
std::vector<EnvRule> load_envrules(const std::filesystem::path& file, PatternKind kind,
                                   std::vector<std::string>* problems = nullptr);

// Whether a rule matches `address` ("" is the null sender).
bool envrule_matches(const EnvRule& rule, std::string_view address, PatternKind kind);

struct EnvChange {
    const EnvRule* rule;
    EnvAssignment assignment;
};
// Applies every rule that matches `address` to `env`, in order; returns the changes made.
std::vector<EnvChange> apply_envrules(const std::vector<EnvRule>& rules, std::string_view address, PatternKind kind,
                                      std::map<std::string, std::string>& env);

}  // namespace qv
