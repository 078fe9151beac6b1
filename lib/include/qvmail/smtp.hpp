// The pieces of SMTP (RFC 5321) that qmail-smtpd parses from its clients: command lines, the paths of
// MAIL and RCPT with their ESMTP parameters, and SMTP AUTH's base64 exchanges (RFC 4954). Kept apart
// from the server so that each can be tested and fuzzed on its own.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qv::smtp {

// A command line without its CR LF: the verb (upper-cased, as far as the first space) and the rest,
// with the spaces after the verb skipped (as qmail's commands() does).
struct Command {
    std::string verb;
    std::string arg;
};
Command parse_command(std::string_view line);

// The argument of MAIL ("FROM:") or RCPT ("TO:"): the address, and the ESMTP parameters that follow
// the closing '>' (KEY or KEY=VALUE, the keys upper-cased).
struct Path {
    std::string address;
    std::vector<std::pair<std::string, std::string>> params;
    bool had_route = false;  // a source route (@a,@b:) was given and dropped
};
enum class PathError {
    none,
    no_prefix,      // not "FROM:" / "TO:"
    syntax,         // unbalanced brackets or quotes, bytes after the path that are not parameters
    too_long,       // the address is longer than 900 bytes (qmail's limit)
    bad_parameter,  // a parameter that is not KEY[=VALUE]
};
// qmail's reading of an address: the text between '<' and '>' (or, without '<', from the ':' to the
// first space), a source route dropped, double quotes removed and backslashes unescaped, so that
// "user@remote"@local reads user@remote@local. Unlike qmail, the path must be well formed: a '<'
// needs its '>', and what follows it must be parameters.
std::pair<std::optional<Path>, PathError> parse_path(std::string_view arg, std::string_view prefix);

// Whether `address` is acceptable in an envelope: no NUL, CR, LF or other control bytes.
bool clean_address(std::string_view address);

// Base64 (RFC 4648) with padding; decode refuses anything else (whitespace included, and padding bits
// that are not zero, so that each string has one encoding).
std::string base64_encode(std::string_view data);
std::optional<std::string> base64_decode(std::string_view text);

// AUTH PLAIN's response: authzid \0 authcid \0 password. nullopt when it is not three fields or the
// user (authcid) is empty.
struct PlainCredentials {
    std::string authzid;
    std::string user;
    std::string password;
};
std::optional<PlainCredentials> parse_auth_plain(std::string_view decoded);

// AUTH CRAM-MD5's response: "user digest" (the digest 32 lower-case hex digits).
std::optional<std::pair<std::string, std::string>> parse_cram_response(std::string_view decoded);

}  // namespace qv::smtp
