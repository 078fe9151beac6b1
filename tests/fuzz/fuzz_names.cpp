// Fuzz target: the checks on everything an administrator types that ends up in files and .qmail
// lines: domain names, mailbox names, unknown-user handlers, quotas. What they accept must be safe
// for a /bin/sh command line and for control files.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "qvmail/address.hpp"
#include "qvmail/delivery_instruction.hpp"
#include "qvmail/error.hpp"
#include "qvmail/user.hpp"

namespace {
bool shell_safe(std::string_view s) {
    for (char c : s)
        if (c <= ' ' || c >= 0x7f || std::string_view("'\"`$;&|<>()\\*?{}~#!").find(c) != std::string_view::npos)
            return false;
    return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        std::string d = qv::normalize_domain(text);
        if (d.empty() || d.size() > qv::kMaxDomainLength || !shell_safe(d) || d.find(':') != std::string::npos ||
            d.find('/') != std::string::npos || qv::normalize_domain(d) != d)
            std::abort();
    } catch (const qv::Error&) {
    }
    try {
        std::string l = qv::normalize_local(text);
        if (l.empty() || l.size() > qv::kMaxLocalLength || !shell_safe(l) || l.find(':') != std::string::npos ||
            l.find('/') != std::string::npos)
            std::abort();
    } catch (const qv::Error&) {
    }
    try {
        // Written verbatim into .qmail-default, which /bin/sh runs: nothing the shell would act on
        // (brackets only as the IPv6 host of a route).
        auto h = qv::parse_handler(text);
        if (h.text != text) std::abort();
        for (char c : h.text)
            if (c <= ' ' || c >= 0x7f || std::string_view("'\"`$;&|<>\\()*?{}~!#").find(c) != std::string_view::npos)
                std::abort();
    } catch (const qv::Error&) {
    }
    try {
        std::string q = qv::normalize_quota(text);
        if (q.size() > 30 || qv::normalize_quota(q) != q) std::abort();
    } catch (const qv::Error&) {
    }
    return 0;
}
