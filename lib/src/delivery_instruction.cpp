#include "qvmail/delivery_instruction.hpp"

#include <arpa/inet.h>

#include "qvmail/address.hpp"
#include "qvmail/error.hpp"

namespace qv {

namespace {

[[noreturn]] void bad(std::string_view text, const std::string& why) {
    throw Error(Exit::dataerr, "invalid unknown-user handler '" + printable(text) + "': " + why);
}

bool path_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '.' ||
           c == '_' || c == '-' || c == '+' || c == '=' || c == ',' || c == '@' || c == '%';
}

bool is_port(std::string_view p) {
    if (p.empty() || p.size() > 5) return false;
    unsigned v = 0;
    for (char c : p) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    return v >= 1 && v <= 65535;
}

bool is_hostname(std::string_view h) {
    if (h.empty() || h.size() > 253 || h.front() == '.' || h.back() == '.' || h.find("..") != std::string_view::npos)
        return false;
    for (char c : h)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return false;
    return true;
}

}  // namespace

std::string_view to_string(HandlerKind k) noexcept {
    switch (k) {
        case HandlerKind::discard:
            return "delete";
        case HandlerKind::bounce:
            return "bounce";
        case HandlerKind::maildir:
            return "maildir";
        case HandlerKind::forward:
            return "forward";
        case HandlerKind::route:
            return "smtproute";
    }
    return "?";
}

DotQmailLine classify_dot_qmail_line(std::string_view line) noexcept {
    if (line.empty() || line[0] == '#') return {DotQmailLine::nothing, line};
    if (line[0] == '|') return {DotQmailLine::program, line.substr(1)};
    if (line[0] == '/' || line[0] == '.') return {DotQmailLine::path, line};
    return {DotQmailLine::forward, line[0] == '&' ? line.substr(1) : line};
}

Handler parse_handler(std::string_view t) {
    if (t.empty()) bad(t, "it is empty");
    for (unsigned char c : t)
        if (c <= 0x20 || c >= 0x7f) bad(t, "it contains a blank, a control or a non-ASCII character");
    if (t == "delete") return {HandlerKind::discard, std::string(t)};
    if (t == "bounce-no-mailbox") return {HandlerKind::bounce, std::string(t)};
    if (t.front() == '/') {
        for (char c : t)
            if (!path_char(c)) bad(t, std::string("the character '") + c + "' is not allowed in a Maildir path");
        std::string s(t);
        if (s.find("/../") != std::string::npos || s.find("/./") != std::string::npos || s.ends_with("/..") ||
            s.ends_with("/.") || s.find("//") != std::string::npos)
            bad(t, "the Maildir path must be plain (no '.', '..' or '//' components)");
        return {HandlerKind::maildir, s};
    }
    if (t.find('@') != std::string_view::npos) {
        std::size_t at = t.rfind('@');
        std::string_view local = t.substr(0, at);
        if (local.empty() || local.size() > 64) bad(t, "the local part must have 1 to 64 characters");
        for (char c : local)
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-' || c == '+' || c == '='))
                bad(t, std::string("the character '") + c + "' is not allowed in a forwarding address");
        try {
            normalize_domain(t.substr(at + 1));
        } catch (const Error& e) {
            bad(t, "its domain is not valid");
        }
        return {HandlerKind::forward, std::string(t)};
    }
    if (t.find(':') != std::string_view::npos) {
        // domain:host:port, the host an IPv4 address, a host name or [IPv6]
        std::size_t c1 = t.find(':');
        std::string_view domain = t.substr(0, c1), rest = t.substr(c1 + 1);
        try {
            normalize_domain(domain);
        } catch (const Error&) {
            bad(t, "expected domain:host:port, and '" + printable(domain) + "' is not a domain");
        }
        std::string_view host, port;
        if (!rest.empty() && rest.front() == '[') {
            std::size_t close = rest.find(']');
            if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
                bad(t, "expected domain:[IPv6]:port");
            host = rest.substr(1, close - 1);
            port = rest.substr(close + 2);
            unsigned char buf[16];
            if (::inet_pton(AF_INET6, std::string(host).c_str(), buf) != 1)
                bad(t, "the bracketed host is not an IPv6 address");
        } else {
            std::size_t c2 = rest.find(':');
            if (c2 == std::string_view::npos) bad(t, "expected domain:host:port");
            host = rest.substr(0, c2);
            port = rest.substr(c2 + 1);
            if (port.find(':') != std::string_view::npos)
                bad(t, "too many ':'; write an IPv6 host in brackets, as domain:[::1]:25");
            unsigned char buf[4];
            bool ipv4ish = !host.empty() && host.find_first_not_of("0123456789.") == std::string_view::npos;
            if (ipv4ish ? ::inet_pton(AF_INET, std::string(host).c_str(), buf) != 1 : !is_hostname(host))
                bad(t, "'" + printable(host) + "' is not an IPv4 address or a host name");
        }
        if (!is_port(port)) bad(t, "the port must be a number from 1 to 65535");
        return {HandlerKind::route, std::string(t)};
    }
    if (t.find('/') != std::string_view::npos) bad(t, "a Maildir path must be absolute (start with '/')");
    bad(t, "expected delete, bounce-no-mailbox, an absolute Maildir path, user@domain or domain:host:port");
}

std::string format_qmail_default(const std::filesystem::path& sbindir, const QmailDefault& d) {
    return "| " + (sbindir / (d.vfilter ? "vfilter" : "vdelivermail")).string() + " '' " + d.handler + "\n";
}

std::optional<QmailDefault> parse_qmail_default(std::string_view content) {
    while (!content.empty() && (content.back() == '\n' || content.back() == ' ')) content.remove_suffix(1);
    if (content.find('\n') != std::string_view::npos || !content.starts_with("| ")) return std::nullopt;
    content.remove_prefix(2);
    std::size_t sp = content.find(" '' ");
    if (sp == std::string_view::npos) return std::nullopt;
    std::string_view prog = content.substr(0, sp);
    QmailDefault d;
    if (prog.ends_with("/vfilter"))
        d.vfilter = true;
    else if (!prog.ends_with("/vdelivermail"))
        return std::nullopt;
    d.handler = std::string(content.substr(sp + 4));
    if (d.handler.empty() || d.handler.find(' ') != std::string::npos) return std::nullopt;
    return d;
}

}  // namespace qv
