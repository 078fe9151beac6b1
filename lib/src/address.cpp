#include "qvmail/address.hpp"

#include <arpa/inet.h>

#include <algorithm>

#include "qvmail/error.hpp"
#include "qvmail/text.hpp"

namespace qv {

namespace {

bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

[[noreturn]] void bad_domain(std::string_view name, const std::string& why) {
    throw Error(Exit::dataerr, "invalid domain name '" + printable(name) + "': " + why);
}

}  // namespace

std::string normalize_domain(std::string_view name) {
    for (unsigned char c : name)
        if (c >= 0x80) bad_domain(name, "it is not ASCII; give its punycode form (xn--...), for example from idn2(1)");
    std::string d;
    for (char c : name) d += ascii_lower(c);
    if (d.empty()) bad_domain(name, "it is empty");
    if (d.size() > kMaxDomainLength)
        bad_domain(name, "longer than " + std::to_string(kMaxDomainLength) + " characters");
    std::size_t labels = 0;
    std::string_view last;
    std::string_view rest(d);
    for (;;) {
        std::size_t dot = rest.find('.');
        std::string_view label = rest.substr(0, dot);
        if (label.empty())
            bad_domain(name, d.find("..") != std::string::npos ? "it contains '..'" : "a label is empty");
        if (label.size() > 63) bad_domain(name, "a label is longer than 63 characters");
        for (char c : label)
            if (!is_alnum(c) && c != '-' && c != '_')
                bad_domain(name, std::string("the character '") + printable(std::string_view(&c, 1)) +
                                     "' is not allowed (letters, digits, '-', '_' and '.')");
        if (label.front() == '-' || label.back() == '-') bad_domain(name, "a label starts or ends with '-'");
        ++labels;
        last = label;
        if (dot == std::string_view::npos) break;
        rest.remove_prefix(dot + 1);
    }
    if (labels < 2) bad_domain(name, "it needs at least two labels (like example.com)");
    bool letters = true;
    for (char c : last) letters = letters && c >= 'a' && c <= 'z';
    if (!letters && !last.starts_with("xn--"))
        bad_domain(name, "the top-level label must be letters (or punycode xn--)");
    return d;
}

std::string normalize_local(std::string_view local) {
    auto bad = [&](const std::string& why) {
        throw Error(Exit::dataerr, "invalid user name '" + printable(local) + "': " + why);
    };
    std::string l;
    for (char c : local) l += ascii_lower(c);
    if (l.empty()) bad("it is empty");
    if (l.size() > kMaxLocalLength) bad("longer than " + std::to_string(kMaxLocalLength) + " characters");
    for (char c : l)
        if (!is_alnum(c) && c != '.' && c != '_' && c != '-' && c != '+' && c != '=')
            bad(std::string("the character '") + printable(std::string_view(&c, 1)) +
                "' is not allowed (letters, digits and . _ - + =)");
    if (!is_alnum(l.front())) bad("it must start with a letter or a digit");
    if (l.back() == '.') bad("it ends with '.'");
    if (l.find("..") != std::string::npos) bad("it contains '..'");
    return l;
}

Address parse_address(std::string_view address) {
    std::size_t at = address.rfind('@');
    if (at == std::string_view::npos)
        throw Error(Exit::dataerr, "invalid address '" + printable(address) + "': expected user@domain");
    return Address{normalize_local(address.substr(0, at)), normalize_domain(address.substr(at + 1))};
}

std::string canonical_ip(std::string_view text) {
    // IPv4 as is, IPv6 as inet_ntop writes it, and an IPv4-mapped IPv6 address (::ffff:a.b.c.d, as a
    // dual-stack tcpserver sets TCP6REMOTEIP) as the IPv4 address it is.
    unsigned char buf[16];
    std::string s(text);
    char out[INET6_ADDRSTRLEN];
    if (s.find('\0') != std::string::npos) s.clear();  // inet_pton would stop at the NUL
    if (::inet_pton(AF_INET, s.c_str(), buf) == 1 && ::inet_ntop(AF_INET, buf, out, sizeof out)) return out;
    if (::inet_pton(AF_INET6, s.c_str(), buf) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::equal(mapped, mapped + 12, buf) && ::inet_ntop(AF_INET, buf + 12, out, sizeof out)) return out;
        if (::inet_ntop(AF_INET6, buf, out, sizeof out)) return out;
    }
    throw Error(Exit::dataerr, "invalid IP address '" + printable(text) + "': expected an IPv4 or IPv6 address");
}

}  // namespace qv
