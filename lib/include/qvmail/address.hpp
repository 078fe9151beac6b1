// Domain names and mailbox addresses: validation and normalisation (lower case), as the admin
// commands accept them. Every name checked here ends up in file names, control files and the shell
// line of .qmail files, so the accepted characters are deliberately few.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace qv {

constexpr std::size_t kMaxDomainLength = 67;  // IndiMail's MAX_PW_DOMAIN (pw_domain char(67))
constexpr std::size_t kMaxLocalLength = 40;   // IndiMail's MAX_PW_NAME (pw_name char(40))

// Lower-cases and checks a domain name: ASCII only (a non-ASCII name is refused with a hint to use
// its punycode form), at most 67 characters, at least two labels of 1-63 characters from a-z, 0-9,
// '-' and '_', no label starting or ending with '-', and a top-level label of letters or xn--.
// Throws Error 65 naming the problem.
std::string normalize_domain(std::string_view name);

// Lower-cases and checks the local part of a mailbox: 1-40 characters from a-z, 0-9 and . _ - + =,
// starting with a letter or digit, not ending with '.', no "..". (IndiMail also allows characters
// such as ' $ & | that mean something to the shell; qvmail does not.) Throws Error 65.
std::string normalize_local(std::string_view local);

struct Address {
    std::string local;
    std::string domain;
    std::string str() const { return local + "@" + domain; }
};

// Splits user@domain at its last '@' and normalises both parts. Throws Error 65.
Address parse_address(std::string_view address);

// The canonical text of an IPv4 or IPv6 address, so that one address is always spelt alike: IPv6 as
// inet_ntop writes it, an IPv4-mapped IPv6 address (::ffff:a.b.c.d) as its IPv4 address. Throws Error 65.
std::string canonical_ip(std::string_view text);

}  // namespace qv
