#include "qvmail/assign.hpp"

#include <charconv>

#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"

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

AssignFile AssignFile::load(const std::filesystem::path& path) {
    AssignFile a;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        a.trailer_.push_back(".");
        return a;
    }
    LineReader in(path);
    std::string_view line;
    while (in.next(line)) {
        if (!a.trailer_.empty() || (!line.empty() && line[0] == '.'))
            a.trailer_.emplace_back(line);
        else
            a.lines_.emplace_back(line);
    }
    if (a.trailer_.empty()) a.trailer_.push_back(".");
    return a;
}

std::optional<AssignEntry> AssignFile::domain(std::string_view domain) const {
    std::string prefix = "+" + std::string(domain) + "-:";
    for (auto& l : lines_)
        if (l.starts_with(prefix)) return parse_assign_line(l);
    return std::nullopt;
}

std::vector<AssignEntry> AssignFile::domains() const {
    std::vector<AssignEntry> out;
    for (auto& l : lines_) {
        auto e = parse_assign_line(l);
        if (e && e->wildcard && e->local == e->user + "-" && e->user.find('.') != std::string::npos)
            out.push_back(std::move(*e));
    }
    return out;
}

void AssignFile::add(const AssignEntry& e) { lines_.push_back(format_assign_line(e)); }

bool AssignFile::remove_domain(std::string_view domain) {
    std::string prefix = "+" + std::string(domain) + "-:";
    std::size_t before = lines_.size();
    std::erase_if(lines_, [&](const std::string& l) { return l.starts_with(prefix); });
    return lines_.size() != before;
}

std::string AssignFile::content() const {
    std::string out;
    for (auto& l : lines_) out += l + "\n";
    for (auto& l : trailer_) out += l + "\n";
    return out;
}

CompileStats compile_assign(LineReader& in, CdbSink& sink) {
    CompileStats stats;
    std::string wildchars, key, value;
    std::string_view line;
    auto bad = [&](const std::string& why) {
        throw ParseError(in.name(), in.line_number(), why, std::string(line));
    };
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
        for (char& c : key)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        value.assign(line.substr(i + 1));
        int colons = 0;
        std::size_t j = 0;
        for (; j < value.size(); ++j)
            if (value[j] == ':') {
                value[j] = '\0';
                if (++colons == 6) break;
            }
        if (colons < 6) bad("fewer than seven ':'-separated fields");
        value.resize(j);
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
