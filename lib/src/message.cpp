#include "qvmail/message.hpp"

#include <iconv.h>
#include <locale.h>
#include <wctype.h>

#include <cerrno>
#include <optional>
#include <utility>

#include "qvmail/text.hpp"

namespace qv {

namespace {

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (is_blank(s.front()) || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
    while (!s.empty() && (is_blank(s.back()) || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
    return s;
}

// ---- charsets ----

bool is_utf8_name(std::string_view cs) {
    return equal_ignoring_case(cs, "utf-8") || equal_ignoring_case(cs, "utf8") || equal_ignoring_case(cs, "us-ascii") ||
           equal_ignoring_case(cs, "ascii");
}

// iconv descriptors to UTF-8, opened once per charset and thread.
class Converters {
public:
    ~Converters() {
        for (auto& [name, cd] : open_)
            if (cd != reinterpret_cast<iconv_t>(-1)) iconv_close(cd);
    }
    iconv_t get(const std::string& charset) {
        for (auto& [name, cd] : open_)
            if (name == charset) return cd;
        if (open_.size() >= 16) {  // the oldest goes (the cache lives as long as the process)
            if (open_.front().second != reinterpret_cast<iconv_t>(-1)) iconv_close(open_.front().second);
            open_.erase(open_.begin());
        }
        iconv_t cd = iconv_open("UTF-8", charset.c_str());
        open_.emplace_back(charset, cd);
        return cd;
    }

private:
    std::vector<std::pair<std::string, iconv_t>> open_;
};

std::string to_utf8(const std::string& bytes, std::string_view charset) {
    if (is_utf8_name(charset)) return bytes;
    thread_local Converters converters;
    iconv_t cd = converters.get(ascii_lower(charset));
    if (cd == reinterpret_cast<iconv_t>(-1)) return bytes;  // an unknown charset: the bytes as they are
    iconv(cd, nullptr, nullptr, nullptr, nullptr);
    std::string out;
    out.resize(bytes.size() * 4 + 16);
    char* in = const_cast<char*>(bytes.data());
    std::size_t in_left = bytes.size();
    char* o = out.data();
    std::size_t o_left = out.size();
    while (in_left > 0) {
        if (iconv(cd, &in, &in_left, &o, &o_left) != static_cast<std::size_t>(-1)) break;
        if (errno == E2BIG) {
            std::size_t used = static_cast<std::size_t>(o - out.data());
            out.resize(out.size() * 2);
            o = out.data() + used;
            o_left = out.size() - used;
            continue;
        }
        // an invalid sequence: U+FFFD for its first byte, and on; an incomplete one at the end: U+FFFD
        bool incomplete = errno == EINVAL;
        if (o_left < 3) {
            std::size_t used = static_cast<std::size_t>(o - out.data());
            out.resize(out.size() + 16);
            o = out.data() + used;
            o_left = out.size() - used;
        }
        *o++ = '\xEF';
        *o++ = '\xBF';
        *o++ = '\xBD';
        o_left -= 3;
        if (incomplete) break;
        ++in;
        --in_left;
        iconv(cd, nullptr, nullptr, nullptr, nullptr);
    }
    out.resize(static_cast<std::size_t>(o - out.data()));
    return out;
}

// ---- RFC 2047 ----

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::optional<std::string> decode_q(std::string_view t) {
    std::string out;
    out.reserve(t.size());
    for (std::size_t i = 0; i < t.size(); ++i) {
        char c = t[i];
        if (c == '_') {
            out += ' ';
        } else if (c == '=' && i + 2 < t.size() && hex_value(t[i + 1]) >= 0 && hex_value(t[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(t[i + 1]) * 16 + hex_value(t[i + 2]));
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

std::optional<std::string> decode_b(std::string_view t) {
    std::string out;
    out.reserve(t.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    std::size_t i = 0;
    for (; i < t.size() && t[i] != '='; ++i) {
        int v = base64_value(t[i]);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    for (; i < t.size(); ++i)
        if (t[i] != '=') return std::nullopt;  // data after the padding
    return out;
}

struct EncodedWord {
    std::size_t end = 0;  // just past "?="
    std::string text;     // decoded, in UTF-8
};

// Where `needle` (or, with `any`, one of its characters) next stands at or after a position, for
// positions that only grow: the answer is kept while it holds, so that all the searches of one value
// look at each byte once. Hostile input (thousands of "=?" and no "?=") cannot make decoding quadratic.
class NextOf {
public:
    NextOf(std::string_view s, std::string_view needle, bool any = false) : s_(s), needle_(needle), any_(any) {}
    std::size_t operator()(std::size_t from) {
        if (!valid_ || from < from_ || from > at_) {
            at_ = any_ ? s_.find_first_of(needle_, from) : s_.find(needle_, from);
            valid_ = true;
        }
        from_ = from;
        return at_;
    }

private:
    std::string_view s_, needle_;
    bool any_;
    bool valid_ = false;
    std::size_t from_ = 0, at_ = 0;
};

struct WordScanner {
    explicit WordScanner(std::string_view s)
        : s(s),
          question(s, "?"),
          close(s, "?="),
          blank_in_charset(s, " \t\r\n", true),
          blank_in_text(s, " \t\r\n", true) {}
    std::string_view s;
    NextOf question, close, blank_in_charset, blank_in_text;

    // An encoded word starting at s[pos] ("=?"), if it is one. `pos` only grows from call to call.
    std::optional<EncodedWord> word(std::size_t pos) {
        std::size_t q1 = question(pos + 2);
        if (q1 == std::string_view::npos || q1 == pos + 2 || q1 + 3 >= s.size() || s[q1 + 2] != '?')
            return std::nullopt;
        if (blank_in_charset(pos + 2) < q1) return std::nullopt;
        std::size_t end = close(q1 + 3);
        if (end == std::string_view::npos || blank_in_text(q1 + 3) < end) return std::nullopt;
        char enc = s[q1 + 1];
        std::string_view charset = s.substr(pos + 2, q1 - pos - 2), text = s.substr(q1 + 3, end - q1 - 3);
        charset = charset.substr(0, charset.find('*'));  // RFC 2231 language suffix
        std::optional<std::string> raw;
        if (enc == 'Q' || enc == 'q')
            raw = decode_q(text);
        else if (enc == 'B' || enc == 'b')
            raw = decode_b(text);
        if (!raw) return std::nullopt;
        return EncodedWord{end + 2, to_utf8(*raw, charset)};
    }
};

// ---- header blocks and MIME parts ----

struct Line {
    std::string_view text;  // without the line end
    std::size_t next;       // where the next line starts
};

Line line_at(std::string_view raw, std::size_t pos, std::size_t end) {
    std::size_t nl = raw.find('\n', pos);
    if (nl == std::string_view::npos || nl >= end) nl = end;
    std::string_view t = raw.substr(pos, nl - pos);
    if (!t.empty() && t.back() == '\r') t.remove_suffix(1);
    return Line{t, nl < end ? nl + 1 : end};
}

bool field_name_ok(std::string_view n) {
    if (n.empty()) return false;
    for (unsigned char c : n)
        if (c <= 32 || c >= 127) return false;
    return true;
}

// Reads the header block at [pos, end); returns where the body starts.
std::size_t read_header(std::string_view raw, std::size_t pos, std::size_t end, unsigned part, bool top,
                        std::vector<HeaderField>& out) {
    std::size_t first = out.size();
    std::vector<std::string> values;  // raw (folded) values of the fields added here
    bool first_line = true;
    while (pos < end) {
        Line l = line_at(raw, pos, end);
        if (l.text.empty()) {
            pos = l.next;
            break;
        }
        if (top && first_line && l.text.starts_with("From ")) {  // an mbox separator
            first_line = false;
            pos = l.next;
            continue;
        }
        first_line = false;
        if (is_blank(l.text[0])) {
            if (!values.empty()) {
                values.back() += '\n';
                values.back() += l.text;
            }
            pos = l.next;
            continue;
        }
        std::size_t colon = l.text.find(':');
        std::string_view name = colon == std::string_view::npos ? "" : l.text.substr(0, colon);
        while (!name.empty() && is_blank(name.back())) name.remove_suffix(1);
        if (!field_name_ok(name)) break;  // not a field: the body starts here
        out.push_back(HeaderField{std::string(name), {}, part});
        values.emplace_back(l.text.substr(colon + 1));
        pos = l.next;
    }
    for (std::size_t i = 0; i < values.size(); ++i)
        out[first + i].value = std::string(trim(decode_encoded_words(unfold(values[i]))));
    return pos;
}

struct Walker {
    std::string_view raw;
    Message& msg;

    const HeaderField* content_type(std::size_t from, unsigned part) const {
        for (std::size_t i = from; i < msg.headers.size(); ++i)
            if (msg.headers[i].part == part && equal_ignoring_case(msg.headers[i].name, "Content-Type"))
                return &msg.headers[i];
        return nullptr;
    }

    // The body [pos, end) of an entity whose header starts at msg.headers[from] (part `part`).
    void body(std::size_t from, unsigned part, std::size_t pos, std::size_t end, unsigned depth) {
        const HeaderField* ct = content_type(from, part);
        if (!ct || !ascii_lower(ct->value).starts_with("multipart/")) return;
        std::string boundary = header_parameter(ct->value, "boundary");
        if (boundary.empty()) return;
        if (depth >= kMaxMimeDepth) {
            msg.parts_truncated = true;
            return;
        }
        std::string delim = "--" + boundary;
        std::optional<std::size_t> part_start;
        while (pos < end) {
            Line l = line_at(raw, pos, end);
            std::string_view t = l.text;
            if (t.starts_with(delim)) {
                std::string_view rest = t.substr(delim.size());
                bool close = rest.starts_with("--");
                if (close) rest.remove_prefix(2);
                if (trim(rest).empty()) {
                    if (part_start && !entity(*part_start, pos, depth + 1)) return;
                    if (close) return;
                    part_start = l.next;
                }
            }
            pos = l.next;
        }
        if (part_start) entity(*part_start, end, depth + 1);  // an unclosed last part
    }

    // One MIME part at [pos, end); false once the part limit is reached.
    bool entity(std::size_t pos, std::size_t end, unsigned depth) {
        if (msg.parts >= kMaxMimeParts) {
            msg.parts_truncated = true;
            return false;
        }
        unsigned part = ++msg.parts;
        std::size_t from = msg.headers.size();
        std::size_t body_start = read_header(raw, pos, end, part, false, msg.headers);
        body(from, part, body_start, end, depth);
        return true;
    }
};

// ---- case folding ----

// glibc's built-in C.UTF-8 gives the Unicode case mappings (the unit tests check that it is there); were
// it missing, non-ASCII letters would keep their case.
locale_t utf8_locale() {
    static locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    return loc;
}

}  // namespace

std::string unfold(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        char c = v[i];
        if (c != '\r' && c != '\n') {
            out += c;
            continue;
        }
        // a line break, and the blanks that start the next line, become one space
        if (c == '\r' && i + 1 < v.size() && v[i + 1] == '\n') ++i;
        bool folded = false;
        while (i + 1 < v.size() && is_blank(v[i + 1])) {
            ++i;
            folded = true;
        }
        if (folded) out += ' ';
    }
    return out;
}

std::string decode_encoded_words(std::string_view s) {
    if (s.find("=?") == std::string_view::npos) return std::string(s);
    std::string out;
    out.reserve(s.size());
    std::size_t pos = 0;
    bool after_word = false;  // an encoded word came last
    WordScanner scan(s);
    while (pos < s.size()) {
        std::size_t start = s.find("=?", pos);
        if (start == std::string_view::npos) break;
        auto w = scan.word(start);
        if (!w) {
            out.append(s.substr(pos, start + 2 - pos));
            pos = start + 2;
            after_word = false;
            continue;
        }
        std::string_view between = s.substr(pos, start - pos);
        bool blank = true;
        for (char c : between) blank = blank && (is_blank(c) || c == '\r' || c == '\n');
        if (!(after_word && blank)) out.append(between);  // blanks between two encoded words go
        out += w->text;
        pos = w->end;
        after_word = true;
    }
    out.append(s.substr(pos));
    return out;
}

std::string fold_case(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    locale_t loc = utf8_locale();
    for (std::size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            out += ascii_lower(static_cast<char>(c));
            ++i;
            continue;
        }
        char32_t cp = 0;
        std::size_t n = utf8_decode(s, i, cp);
        if (n == 0 || !loc) {
            out += static_cast<char>(c);
            ++i;
            continue;
        }
        utf8_encode(static_cast<char32_t>(towlower_l(static_cast<wint_t>(cp), loc)), out);
        i += n;
    }
    return out;
}

std::string header_parameter(std::string_view v, std::string_view name) {
    // type/subtype *( ";" attribute "=" value ), value a token or a quoted string
    std::size_t i = v.find(';');
    while (i != std::string_view::npos && i < v.size()) {
        ++i;
        while (i < v.size() && (is_blank(v[i]) || v[i] == '\r' || v[i] == '\n')) ++i;
        std::size_t eq = v.find('=', i);
        if (eq == std::string_view::npos) return {};
        std::string_view attr = trim(v.substr(i, eq - i));
        std::size_t j = eq + 1;
        while (j < v.size() && is_blank(v[j])) ++j;
        std::string value;
        if (j < v.size() && v[j] == '"') {
            for (++j; j < v.size() && v[j] != '"'; ++j) {
                if (v[j] == '\\' && j + 1 < v.size()) ++j;
                value += v[j];
            }
            if (j < v.size()) ++j;
            i = v.find(';', j);
        } else {
            std::size_t semi = v.find(';', j);
            value = std::string(trim(v.substr(j, semi == std::string_view::npos ? std::string_view::npos : semi - j)));
            i = semi;
        }
        if (equal_ignoring_case(attr, name)) return value;
    }
    return {};
}

std::vector<std::string> header_addresses(std::string_view v) {
    std::vector<std::string> out;
    std::string plain;  // the current element outside quotes, comments and angle brackets
    std::string angle;  // the text inside <...>
    bool have_angle = false, in_angle = false, in_quote = false;
    int comment = 0;
    auto finish = [&] {
        std::string a = have_angle ? angle : plain;
        std::string_view t = trim(a);
        if (have_angle) {  // an obsolete source route "@a,@b:user@domain"
            std::size_t colon = t.find(':');
            if (!t.empty() && t[0] == '@' && colon != std::string_view::npos) t = trim(t.substr(colon + 1));
        }
        if (!t.empty() && t.find('@') != std::string_view::npos) out.push_back(ascii_lower(t));
        plain.clear();
        angle.clear();
        have_angle = false;
    };
    for (std::size_t i = 0; i < v.size(); ++i) {
        char c = v[i];
        if (in_quote) {  // a quoted local part ("john smith"@example.com) or display name
            plain += c;
            if (c == '\\' && i + 1 < v.size())
                plain += v[++i];
            else if (c == '"')
                in_quote = false;
            continue;
        }
        if (comment > 0) {
            if (c == '\\' && i + 1 < v.size())
                ++i;
            else if (c == '(')
                ++comment;
            else if (c == ')')
                --comment;
            continue;
        }
        if (in_angle) {
            if (c == '>')
                in_angle = false;
            else
                angle += c;
            continue;
        }
        switch (c) {
            case '"':
                in_quote = true;
                plain += c;
                break;
            case '(':
                comment = 1;
                break;
            case '<':
                in_angle = true;
                have_angle = true;
                angle.clear();
                break;
            case ':':
                plain.clear();  // a group's name
                break;
            case ',':
            case ';':
                finish();
                break;
            default:
                if (!is_blank(c) && c != '\r' && c != '\n') plain += c;
        }
    }
    finish();
    return out;
}

Message parse_message(std::string_view raw) {
    Message msg;
    msg.size = raw.size();
    std::size_t body = read_header(raw, 0, raw.size(), 0, true, msg.headers);
    Walker{raw, msg}.body(0, 0, body, raw.size(), 0);
    return msg;
}

}  // namespace qv
