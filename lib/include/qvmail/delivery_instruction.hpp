// The unknown-user handler of a domain and the .qmail-default line that carries it:
//   | <sbindir>/vdelivermail '' <handler>      (or vfilter instead of vdelivermail)
// qmail-local runs that line with /bin/sh, so a handler is checked strictly: no blanks, no shell
// metacharacters, and one of the five forms vdelivermail knows.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace qv {

enum class HandlerKind {
    discard,  // delete: the mail is dropped
    bounce,   // bounce-no-mailbox
    maildir,  // an absolute path: delivered into that Maildir
    forward,  // user@domain: forwarded
    route,    // domain:host:port (an IPv6 host in brackets): handed to qmail-remote (SMTPROUTE)
};

struct Handler {
    HandlerKind kind;
    std::string text;  // exactly as written into .qmail-default
};

constexpr std::string_view kDefaultHandler = "bounce-no-mailbox";

// Checks a handler and says which form it is. Throws Error 65 naming what is wrong.
Handler parse_handler(std::string_view text);
std::string_view to_string(HandlerKind k) noexcept;

struct QmailDefault {
    bool vfilter = false;  // vfilter runs the domain's filters before delivery
    std::string handler;
};

// One line of a .qmail file or an alias, as qmail-local reads it (the caller has taken off what may
// surround it): nothing (empty, or a # comment), |command, a path (starting with '/' or '.': a Maildir
// when it ends with '/', else an mbox file), or an address to forward to (with or without its '&').
struct DotQmailLine {
    enum Kind { nothing, program, path, forward } kind = nothing;
    std::string_view text;  // program: the command; path: the line; forward: the address, '&' taken off
};
DotQmailLine classify_dot_qmail_line(std::string_view line) noexcept;

std::string format_qmail_default(const std::filesystem::path& sbindir, const QmailDefault& d);
// The handler and program of a .qmail-default qvmail (or IndiMail) wrote; nullopt for anything else.
std::optional<QmailDefault> parse_qmail_default(std::string_view content);

}  // namespace qv
