// Fuzz target: what qmail-smtpd parses from a client. Each line of the input is a command line; its
// argument is read as a MAIL and a RCPT path, and as AUTH's base64. Properties: nothing crashes or
// reads out of bounds; a parsed path's address has no unquoted bracket, is at most 900 bytes and its
// parameter keys are upper-case; base64 decoding is the inverse of encoding; the AUTH parsers' fields
// satisfy what the server relies on (a non-empty user; a 32-digit lower-case digest).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "qvmail/smtp.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        qv::smtp::Command c = qv::smtp::parse_command(line);
        if (c.verb.size() > line.size() || c.arg.size() > line.size()) std::abort();
        for (char ch : c.verb)
            if (ch >= 'a' && ch <= 'z') std::abort();
        for (std::string_view prefix : {std::string_view("FROM:"), std::string_view("TO:")}) {
            auto [p, err] = qv::smtp::parse_path(c.arg, prefix);
            if (!p) {
                if (err == qv::smtp::PathError::none) std::abort();
                continue;
            }
            if (err != qv::smtp::PathError::none || p->address.size() > 900) std::abort();
            for (auto& [k, v] : p->params) {
                if (k.empty()) std::abort();
                for (char ch : k)
                    if (ch >= 'a' && ch <= 'z') std::abort();
            }
        }
        auto decoded = qv::smtp::base64_decode(c.arg);
        if (decoded && qv::smtp::base64_encode(*decoded) != c.arg) std::abort();
        if (qv::smtp::base64_decode(qv::smtp::base64_encode(line)) != std::string(line)) std::abort();
        std::string_view raw = decoded ? std::string_view(*decoded) : line;
        if (auto plain = qv::smtp::parse_auth_plain(raw); plain && plain->user.empty()) std::abort();
        if (auto cram = qv::smtp::parse_cram_response(raw)) {
            if (cram->first.empty() || cram->second.size() != 32) std::abort();
            for (char ch : cram->second)
                if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) std::abort();
        }
    }
    return 0;
}
