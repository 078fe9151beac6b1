#include "qvmail/assign.hpp"

#include <charconv>

#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"
#include "qvmail/text.hpp"

namespace qv {

std::string format_assign_line(const AssignEntry& e) {
    return std::string(1, e.wildcard ? '+' : '=') + e.local + ":" + e.user + ":" + std::to_string(e.uid) + ":" +
           std::to_string(e.gid) + ":" + e.dir.string() + ":" + e.dash + ":" + e.ext + ":";
}

AssignEntry domain_assign_entry(const std::string& domain, uid_t uid, gid_t gid, const std::filesystem::path& dir) {
    return AssignEntry{true, domain + "-", domain, uid, gid, dir, "-", ""};
}

std::optional<AssignEntry> parse_assign_line(std::string_view line) {
    if (line.empty() || (line[0] != '+' && line[0] != '=')) return std::nullopt;
    std::vector<std::string_view> f;
    std::string_view rest = line.substr(1);
    for (int i = 0; i < 7; ++i) {
        std::size_t c = rest.find(':');
        if (c == std::string_view::npos) return std::nullopt;
        f.push_back(rest.substr(0, c));
        rest.remove_prefix(c + 1);
    }
    AssignEntry e;
    e.wildcard = line[0] == '+';
    e.local = f[0];
    e.user = f[1];
    unsigned long uid = 0, gid = 0;
    if (std::from_chars(f[2].data(), f[2].data() + f[2].size(), uid).ec != std::errc() ||
        std::from_chars(f[3].data(), f[3].data() + f[3].size(), gid).ec != std::errc())
        return std::nullopt;
    e.uid = static_cast<uid_t>(uid);
    e.gid = static_cast<gid_t>(gid);
    e.dir = std::string(f[4]);
    e.dash = f[5];
    e.ext = f[6];
    return e;
}

namespace {
// Calls fn(line) for each line of text (every line ends in '\n') until it returns false.
template <class Fn>
void each_line(std::string_view text, Fn fn) {
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        if (!fn(text.substr(0, nl))) return;
        text.remove_prefix(nl + 1);
    }
}
}  // namespace

AssignFile AssignFile::load(const std::filesystem::path& path) {
    AssignFile a;
    if (!path_exists(path)) {
        a.trailer_ = ".\n";
        return a;
    }
    LineReader in(path);
    std::string_view line;
    while (in.next(line)) {
        std::string& to = !a.trailer_.empty() || (!line.empty() && line[0] == '.') ? a.trailer_ : a.body_;
        to.append(line);
        to += '\n';
    }
    if (a.trailer_.empty()) a.trailer_ = ".\n";
    return a;
}

std::optional<AssignEntry> AssignFile::domain(std::string_view domain) const {
    std::string prefix = "+" + std::string(domain) + "-:";
    std::optional<AssignEntry> found;
    each_line(body_, [&](std::string_view l) {
        if (l.starts_with(prefix)) found = parse_assign_line(l);
        return !found;
    });
    return found;
}

std::vector<AssignEntry> AssignFile::domains() const {
    std::vector<AssignEntry> out;
    each_line(body_, [&](std::string_view l) {
        auto e = parse_assign_line(l);
        if (e && e->wildcard && e->local == e->user + "-" && e->user.find('.') != std::string::npos)
            out.push_back(std::move(*e));
        return true;
    });
    return out;
}

void AssignFile::add(const AssignEntry& e) {
    body_ += format_assign_line(e);
    body_ += '\n';
}

bool AssignFile::remove_domain(std::string_view domain) {
    std::string prefix = "+" + std::string(domain) + "-:";
    std::string kept;
    kept.reserve(body_.size());
    bool removed = false;
    each_line(body_, [&](std::string_view l) {
        if (l.starts_with(prefix)) {
            removed = true;
        } else {
            kept.append(l);
            kept += '\n';
        }
        return true;
    });
    if (removed) body_ = std::move(kept);
    return removed;
}

std::string AssignFile::content() const {
    return body_ + trailer_;
}

CompileStats compile_assign(LineReader& in, CdbSink& sink) {
    CompileStats stats;
    std::string wildchars, key, value;
    std::string_view line;
    auto bad = [&](const std::string& why) { throw ParseError(in.name(), in.line_number(), why, std::string(line)); };
    bool terminated = false;
    while (in.next(line)) {
        ++stats.lines;
        if (!line.empty() && line[0] == '.') {
            terminated = true;
            break;
        }
        if (!in.had_newline()) bad("the last line has no newline");
        if (line.find('\0') != std::string_view::npos) bad("the line contains a NUL byte");
        std::size_t i = line.find(':');
        if (i == std::string_view::npos || i == 0) bad("expected +local:user:uid:gid:dir:dash:ext: or =...");
        key.assign("!");
        key.append(line.substr(1, i - 1));
        if (line[0] == '+') {
            if (i >= 2 && wildchars.find(line[i - 1]) == std::string::npos) wildchars += line[i - 1];
        } else {
            key.push_back('\0');
        }
        ascii_lower_in_place(key);
        // The first six ':' of the rest become NULs; the value ends at the sixth.
        std::string_view rest = line.substr(i + 1);
        value.clear();
        for (int colons = 0; colons < 6; ++colons) {
            std::size_t c = rest.find(':');
            if (c == std::string_view::npos) bad("fewer than seven ':'-separated fields");
            value.append(rest.substr(0, c));
            value.push_back('\0');
            rest.remove_prefix(c + 1);
        }
        value.pop_back();
        sink.add(key, value);
        ++stats.entries;
    }
    if (!terminated) {
        line = {};
        throw ParseError(in.name(), stats.lines, "no terminating '.' line", "");
    }
    sink.add("", wildchars);
    return stats;
}

}  // namespace qv
