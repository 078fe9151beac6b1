#include "qvmail/control.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "qvmail/atomic_file.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"

namespace qv {

std::string_view control_entry(std::string_view line) noexcept {
    if (!line.empty() && line[0] == '#') return {};
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) line.remove_suffix(1);
    return line;
}

ControlFile ControlFile::load(const std::filesystem::path& path) {
    ControlFile f;
    f.path_ = path;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) return f;
        throw sys_error(exit_for_read_errno(e), "cannot open", path, e);
    }
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            throw sys_error(e == EISDIR ? Exit::noinput : Exit::ioerr, "cannot read", path, e);
        }
        if (n == 0) break;
        f.text_.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (!f.text_.empty() && f.text_.back() != '\n') f.text_ += '\n';
    f.exists_ = true;
    return f;
}

void ControlFile::for_each_line(const std::function<bool(std::string_view)>& fn) const {
    std::string_view t(text_);
    while (!t.empty()) {
        std::size_t nl = t.find('\n');
        if (!fn(t.substr(0, nl))) return;
        t.remove_prefix(nl + 1);  // text_ always ends with '\n'
    }
}

std::vector<std::string_view> ControlFile::lines() const {
    std::vector<std::string_view> out;
    for_each_line([&](std::string_view l) {
        out.push_back(l);
        return true;
    });
    return out;
}

std::vector<std::string> ControlFile::entries() const {
    std::vector<std::string> out;
    for_each_line([&](std::string_view l) {
        if (auto e = control_entry(l); !e.empty()) out.emplace_back(e);
        return true;
    });
    return out;
}

std::size_t ControlFile::count_entries() const {
    std::size_t n = 0;
    for_each_line([&](std::string_view l) {
        n += !control_entry(l).empty();
        return true;
    });
    return n;
}

bool ControlFile::contains(std::string_view entry) const {
    bool found = false;
    if (entry.empty()) return false;
    for_each_line([&](std::string_view l) {
        found = control_entry(l) == entry;
        return !found;
    });
    return found;
}

bool ControlFile::add(std::string_view entry) {
    if (contains(entry)) return false;
    text_.append(entry);
    text_ += '\n';
    return true;
}

std::size_t ControlFile::remove(std::string_view entry) {
    if (entry.empty()) return 0;
    std::string kept;
    kept.reserve(text_.size());
    std::size_t removed = 0;
    for_each_line([&](std::string_view l) {
        if (control_entry(l) == entry) {
            ++removed;
        } else {
            kept.append(l);
            kept += '\n';
        }
        return true;
    });
    if (removed) text_ = std::move(kept);
    return removed;
}

void ControlFile::save(mode_t mode_if_new) const {
    replace_file(path_, text_, mode_if_new);
}

std::optional<std::string> control_first_line(const Paths& paths, std::string_view name) {
    auto e = ControlFile::load(paths.control(name)).entries();
    if (e.empty()) return std::nullopt;
    return e.front();
}

std::optional<std::uint64_t> parse_decimal(std::string_view s) {
    std::uint64_t v = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
    return v;
}

std::uint64_t control_number(const Paths& paths, std::string_view name, std::uint64_t dflt) {
    auto line = control_first_line(paths, name);
    if (!line) return dflt;
    auto n = parse_decimal(*line);
    if (!n) throw Error(Exit::config, paths.control(name).string() + ": not a number: " + *line);
    return *n;
}

}  // namespace qv
