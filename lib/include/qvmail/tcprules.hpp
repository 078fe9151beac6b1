// ucspi-tcp access rules (tcp.smtp and friends): parsing and cdb encoding exactly as djb's tcprules
// 0.88, and lookup in the order tcpserver probes keys. See ../shared/reference/cdb-and-tcprules.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qvmail/cdb.hpp"

namespace qv {
class CdbReader;
class LineReader;
}  // namespace qv

namespace qv::tcprules {

enum class LineKind {
    rule,      // address:allow|deny[,NAME=<q>value<q>]...
    comment,   // first byte '#'
    blank,     // empty, or only blanks
    no_colon,  // no ':' at all: tcprules skips such a line silently
};

struct ParsedLine {
    LineKind kind = LineKind::blank;
    std::string_view address;  // the text before the first ':' (rule lines)
    bool deny = false;
    std::string_view error;  // set when the line is malformed (tcprules exits 100 on it)
};

// Parses one line (without its '\n'). For a rule, the cdb value (D\0 for deny, then +NAME=VALUE\0
// per variable) is written to `value`. Views point into `line`.
ParsedLine parse_line(std::string_view line, std::string& value);

// The line as tcprules reports it: trailing blanks (space, tab) removed.
std::string_view strip_trailing(std::string_view line) noexcept;

// Expands an address into its cdb keys: one key, or one per number of a range such as 1.2.3.37-53
// (only when the address has no '=' or '@'). Returns false when a range number is malformed.
bool expand_address(std::string_view address, const std::function<void(std::string_view key)>& emit);

// Compiles a rules file into `sink`. Throws ParseError (exit 65) naming the file, line and text.
CompileStats compile(LineReader& in, CdbSink& sink);

// ---- lookup, as tcpserver does it ----

struct Client {
    std::string ip;                   // TCPREMOTEIP
    std::optional<std::string> host;  // TCPREMOTEHOST, when known
    std::optional<std::string> info;  // TCPREMOTEINFO, when known
};

// The keys tcpserver tries, in order: info@ip, info@=host, ip, =host, ip prefixes ending in '.'
// (longest first), =.suffixes of host (longest first), '=', and the empty key.
std::vector<std::string> probe_keys(const Client& client);

struct Decision {
    bool deny = false;
    std::vector<std::pair<std::string, std::string>> env;  // variables set, in order
};

// Decodes a rule value as tcpserver does: 'D' items deny, '+NAME=VALUE' items set a variable.
Decision decode(std::string_view value);

struct Match {
    std::optional<std::string> key;  // the rule that matched; none: no rule, connection allowed
    Decision decision;
    std::vector<std::string> probed;  // keys tried, up to and including the match
};

Match lookup(const CdbReader& db, const Client& client);

// The first line of a rules file that produces `key` (the line in effect, as the first record wins).
struct SourceRule {
    std::uint64_t line;
    std::string text;
};
std::optional<SourceRule> find_source_rule(const std::filesystem::path& rules_file, std::string_view key);

}  // namespace qv::tcprules
