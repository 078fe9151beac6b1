#include "qvmail/tcprules.hpp"

#include "qvmail/cdb.hpp"
#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"

namespace qv::tcprules {

namespace {

constexpr std::size_t kMaxWarnings = 100;

// djb's scan_ulong plus tcprules' check: digits (wrapping like unsigned long), then the end of the
// number or a NUL byte.
bool getnum(std::string_view s, std::uint64_t& out) {
    std::uint64_t v = 0;
    std::size_t pos = 0;
    while (pos < s.size() && static_cast<unsigned char>(s[pos] - '0') < 10) {
        v = v * 10 + static_cast<unsigned char>(s[pos] - '0');
        ++pos;
    }
    out = v;
    return pos == s.size() || s[pos] == '\0';
}

}  // namespace

std::string_view strip_trailing(std::string_view line) noexcept {
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\n')) line.remove_suffix(1);
    return line;
}

ParsedLine parse_line(std::string_view line, std::string& value) {
    ParsedLine r;
    value.clear();
    if (line.empty()) return r;  // blank
    if (line[0] == '#') {
        r.kind = LineKind::comment;
        return r;
    }
    std::string_view x = strip_trailing(line);
    std::size_t colon = x.find(':');
    if (colon == std::string_view::npos) {
        r.kind = x.empty() ? LineKind::blank : LineKind::no_colon;
        return r;
    }
    r.kind = LineKind::rule;
    r.address = x.substr(0, colon);
    x.remove_prefix(colon + 1);
    if (x.size() >= 4 && x.substr(0, 4) == "deny") {
        value.append("D\0", 2);
        r.deny = true;
        x.remove_prefix(4);
    } else if (x.size() >= 5 && x.substr(0, 5) == "allow") {
        x.remove_prefix(5);
    } else {
        r.error = "expected allow or deny after the first ':'";
        return r;
    }
    while (!x.empty()) {
        if (x[0] != ',') {
            r.error = "expected ',' and a variable after allow/deny or after a closing quote";
            return r;
        }
        std::size_t eq = x.find('=');
        if (eq == std::string_view::npos) {
            r.error = "variable without '='";
            return r;
        }
        value += '+';
        value.append(x.substr(1, eq));  // NAME=
        x.remove_prefix(eq + 1);
        if (x.empty()) {
            r.error = "no quote character after '=' (write NAME=\"value\")";
            return r;
        }
        char quote = x[0];
        x.remove_prefix(1);
        std::size_t close = x.find(quote);
        if (close == std::string_view::npos) {
            r.error =
                "value is not closed by its quote character (write NAME=\"value\"; the byte after '=' is the quote)";
            return r;
        }
        value.append(x.substr(0, close));
        value.push_back('\0');
        x.remove_prefix(close + 1);
    }
    return r;
}

bool expand_address(std::string_view a, const std::function<void(std::string_view)>& emit) {
    if (a.find('=') == std::string_view::npos && a.find('@') == std::string_view::npos) {
        std::size_t dash = a.find('-');
        if (dash != std::string_view::npos) {
            std::size_t left = a.substr(0, dash).rfind('.');
            left = left == std::string_view::npos ? 0 : left + 1;
            std::size_t right = a.find('.', dash + 1);
            if (right == std::string_view::npos) right = a.size();
            std::uint64_t bot = 0, top = 0;
            if (!getnum(a.substr(left, dash - left), bot) || !getnum(a.substr(dash + 1, right - dash - 1), top))
                return false;
            if (top > 255) top = 255;
            std::string key;
            for (; bot <= top; ++bot) {
                key.assign(a.substr(0, left));
                key += std::to_string(bot);
                key.append(a.substr(right));
                emit(key);
            }
            return true;
        }
    }
    emit(a);
    return true;
}

CompileStats compile(LineReader& in, CdbSink& sink) {
    CompileStats stats;
    std::string value;
    std::string_view line;
    auto emit = [&](std::string_view key) { sink.add(key, value); };
    while (in.next(line)) {
        ++stats.lines;
        ParsedLine p = parse_line(line, value);
        if (p.kind == LineKind::no_colon) {
            if (stats.warnings.size() < kMaxWarnings)
                stats.warnings.push_back({in.line_number(), "line has no ':' and is ignored (as tcprules does): " +
                                                                printable(strip_trailing(line))});
            continue;
        }
        if (p.kind != LineKind::rule) continue;
        std::string_view text = strip_trailing(line);
        if (!p.error.empty()) {
            std::string reason(p.error);
            if (!text.empty() && text.back() == '\r')
                reason += " (the line ends in a carriage return: DOS line endings?)";
            throw ParseError(in.name(), in.line_number(), reason, std::string(text));
        }
        ++stats.entries;
        if (!expand_address(p.address, emit))
            throw ParseError(in.name(), in.line_number(), "malformed number in an address range", std::string(text));
    }
    return stats;
}

std::vector<std::string> probe_keys(const Client& c) {
    std::vector<std::string> keys;
    if (c.info) {
        keys.push_back(*c.info + "@" + c.ip);
        if (c.host) keys.push_back(*c.info + "@=" + *c.host);
    }
    keys.push_back(c.ip);
    if (c.host) keys.push_back("=" + *c.host);
    for (std::size_t len = c.ip.size(); len > 0; --len)
        if (c.ip[len - 1] == '.') keys.push_back(c.ip.substr(0, len));
    if (c.host) {
        for (std::size_t i = 0; i < c.host->size(); ++i)
            if ((*c.host)[i] == '.') keys.push_back("=" + c.host->substr(i));
        keys.push_back("=");
    }
    keys.emplace_back();
    return keys;
}

Decision decode(std::string_view v) {
    Decision d;
    for (std::size_t nul; (nul = v.find('\0')) != std::string_view::npos; v.remove_prefix(nul + 1)) {
        std::string_view item = v.substr(0, nul);
        if (item.empty()) continue;
        if (item[0] == 'D') {
            d.deny = true;
        } else if (item[0] == '+') {
            std::size_t eq = item.find('=', 1);
            if (eq != std::string_view::npos)
                d.env.emplace_back(std::string(item.substr(1, eq - 1)), std::string(item.substr(eq + 1)));
        }
    }
    return d;
}

Match lookup(const CdbReader& db, const Client& client) {
    Match m;
    for (auto& key : probe_keys(client)) {
        m.probed.push_back(key);
        if (auto v = db.find(key)) {
            m.key = key;
            m.decision = decode(*v);
            return m;
        }
    }
    return m;
}

std::optional<SourceRule> find_source_rule(const std::filesystem::path& rules_file, std::string_view key) {
    LineReader in(rules_file);
    std::string value;
    std::string_view line;
    while (in.next(line)) {
        ParsedLine p = parse_line(line, value);
        if (p.kind != LineKind::rule || !p.error.empty()) continue;
        bool hit = false;
        expand_address(p.address, [&](std::string_view k) { hit = hit || k == key; });
        if (hit) return SourceRule{in.line_number(), std::string(strip_trailing(line))};
    }
    return std::nullopt;
}

}  // namespace qv::tcprules
