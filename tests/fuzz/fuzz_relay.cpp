// Fuzz target: what relay control accepts from an administrator or a login. Properties: a tcp.smtp
// address that tcprules_address() accepts makes, with any variable value, a rule line that the
// tcprules parser reads back with that address and value; the relay list entries normalise to a
// fixed point; grant addresses are canonical; the checkpassword parser never reads past its input.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "qvmail/auth.hpp"
#include "qvmail/error.hpp"
#include "qvmail/relay.hpp"
#include "qvmail/tcprules.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    // the first line is an address, the rest a variable's value
    std::size_t nl = text.find('\n');
    std::string_view first = text.substr(0, nl), rest = nl == std::string_view::npos ? "" : text.substr(nl + 1);
    try {
        std::string addr = qv::tcprules_address(first);
        if (addr.find_first_of(":,\n") != std::string::npos) std::abort();
        try {
            std::string line = qv::format_rule(addr, false, {{"RELAYCLIENT", std::string(rest)}});
            if (rest.find('\n') == std::string_view::npos && rest.find('\0') == std::string_view::npos) {
                std::string value;
                qv::tcprules::ParsedLine p = qv::tcprules::parse_line(line, value);
                if (!p.error.empty() || p.kind != qv::tcprules::LineKind::rule || p.address != addr) std::abort();
                auto d = qv::tcprules::decode(value);
                if (d.deny || d.env.size() != 1 || d.env[0].first != "RELAYCLIENT" || d.env[0].second != rest)
                    std::abort();
            }
        } catch (const qv::Error&) {  // a value that uses every quote character
        }
    } catch (const qv::Error&) {
    }
    for (auto entry : {qv::relayclients_entry, qv::relaydomains_entry, qv::relaymailfrom_entry}) {
        try {
            std::string e = entry(first);
            if (entry(e) != e || e.find('\n') != std::string::npos) std::abort();
        } catch (const qv::Error&) {
        }
    }
    try {
        std::string ip = qv::grant_ip(first);
        if (qv::grant_ip(ip) != ip) std::abort();
    } catch (const qv::Error&) {
    }
    if (auto r = qv::parse_checkpassword(text)) {
        if (r->user.empty() || r->user.size() + r->secret.size() + r->response.size() > size) std::abort();
    }
    return 0;
}
