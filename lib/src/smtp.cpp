// SMTP command, path and AUTH parsing. See smtp.hpp.
#include "qvmail/smtp.hpp"

#include "qvmail/text.hpp"

namespace qv::smtp {

Command parse_command(std::string_view line) {
    Command c;
    std::size_t sp = line.find(' ');
    c.verb = ascii_upper(line.substr(0, sp));
    if (sp != std::string_view::npos) {
        std::string_view arg = line.substr(sp);
        while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
        c.arg = arg;
    }
    return c;
}

namespace {

bool param_key_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

}  // namespace

std::pair<std::optional<Path>, PathError> parse_path(std::string_view arg, std::string_view prefix) {
    auto err = [](PathError e) { return std::pair<std::optional<Path>, PathError>{std::nullopt, e}; };
    // "FROM:" / "TO:", case-insensitively; blanks before the ':' and after it are tolerated
    std::string_view word = prefix.substr(0, prefix.size() - 1);
    if (arg.size() < word.size() || ascii_lower(arg.substr(0, word.size())) != ascii_lower(word))
        return err(PathError::no_prefix);
    arg.remove_prefix(word.size());
    while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
    if (arg.empty() || arg.front() != ':') return err(PathError::no_prefix);
    arg.remove_prefix(1);
    while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);

    Path p;
    char terminator = ' ';
    if (!arg.empty() && arg.front() == '<') {
        terminator = '>';
        arg.remove_prefix(1);
    }
    if (!arg.empty() && arg.front() == '@') {  // a source route: @a,@b:user@c is user@c
        std::size_t colon = arg.find(':');
        if (colon == std::string_view::npos) return err(PathError::syntax);
        arg.remove_prefix(colon + 1);
        p.had_route = true;
    }
    bool quoted = false, escaped = false, closed = false;
    std::size_t i = 0;
    for (; i < arg.size(); ++i) {
        char ch = arg[i];
        if (escaped) {
            p.address += ch;
            escaped = false;
            continue;
        }
        if (!quoted && ch == terminator) {
            closed = true;
            break;
        }
        if (ch == '\\')
            escaped = true;
        else if (ch == '"')
            quoted = !quoted;
        else if (!quoted && (ch == '<' || ch == '>'))
            return err(PathError::syntax);  // a stray bracket: not an address
        else
            p.address += ch;
    }
    if (quoted || escaped || (terminator == '>' && !closed)) return err(PathError::syntax);
    if (p.address.size() > 900) return err(PathError::too_long);
    std::string_view rest = closed ? arg.substr(i + 1) : std::string_view();
    if (terminator == '>' && !rest.empty() && rest.front() != ' ') return err(PathError::syntax);
    while (!rest.empty()) {
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        if (rest.empty()) break;
        std::size_t sp = rest.find(' ');
        std::string_view kv = rest.substr(0, sp);
        rest.remove_prefix(sp == std::string_view::npos ? rest.size() : sp);
        std::size_t eq = kv.find('=');
        std::string_view key = kv.substr(0, eq);
        if (key.empty()) return err(PathError::bad_parameter);
        for (char c : key)
            if (!param_key_char(c)) return err(PathError::bad_parameter);
        std::string_view value = eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1);
        for (char c : value)
            if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e || c == '=')
                return err(PathError::bad_parameter);
        p.params.emplace_back(ascii_upper(key), std::string(value));
    }
    return {std::move(p), PathError::none};
}

bool clean_address(std::string_view address) {
    for (char c : address)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
    return true;
}

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}  // namespace

std::string base64_encode(std::string_view data) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < data.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(data[i]) << 16) | (static_cast<unsigned char>(data[i + 1]) << 8) |
                     static_cast<unsigned char>(data[i + 2]);
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    if (i < data.size()) {
        unsigned v = static_cast<unsigned char>(data[i]) << 16;
        if (i + 1 < data.size()) v |= static_cast<unsigned char>(data[i + 1]) << 8;
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
        out += i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; ++k) {
            char c = text[i + k];
            if (c == '=') {
                // padding only at the very end, and only in the last two places
                if (i + 4 != text.size() || k < 2) return std::nullopt;
                v[k] = 0;
                ++pad;
                continue;
            }
            if (pad) return std::nullopt;  // data after '='
            v[k] = base64_value(c);
            if (v[k] < 0) return std::nullopt;
        }
        // the bits below the last byte must be zero: one encoding for each string (RFC 4648 §3.5)
        if ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15))) return std::nullopt;
        unsigned n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
        out += static_cast<char>(n >> 16);
        if (pad < 2) out += static_cast<char>((n >> 8) & 255);
        if (pad < 1) out += static_cast<char>(n & 255);
    }
    return out;
}

std::optional<PlainCredentials> parse_auth_plain(std::string_view decoded) {
    std::size_t a = decoded.find('\0');
    if (a == std::string_view::npos) return std::nullopt;
    std::size_t b = decoded.find('\0', a + 1);
    if (b == std::string_view::npos) return std::nullopt;
    if (decoded.find('\0', b + 1) != std::string_view::npos) return std::nullopt;
    PlainCredentials c{std::string(decoded.substr(0, a)), std::string(decoded.substr(a + 1, b - a - 1)),
                       std::string(decoded.substr(b + 1))};
    if (c.user.empty()) return std::nullopt;
    return c;
}

std::optional<std::pair<std::string, std::string>> parse_cram_response(std::string_view decoded) {
    std::size_t sp = decoded.rfind(' ');
    if (sp == std::string_view::npos || sp == 0) return std::nullopt;
    std::string_view user = decoded.substr(0, sp), digest = decoded.substr(sp + 1);
    if (digest.size() != 32) return std::nullopt;
    for (char c : digest)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
    if (user.find('\0') != std::string_view::npos) return std::nullopt;
    return std::pair{std::string(user), std::string(digest)};
}

}  // namespace qv::smtp
