#include "qvmail/control.hpp"

#include <cerrno>

#include "qvmail/atomic_file.hpp"
#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"

namespace qv {

std::string_view control_entry(std::string_view line) noexcept {
    if (!line.empty() && line[0] == '#') return {};
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) line.remove_suffix(1);
    return line;
}

ControlFile ControlFile::load(const std::filesystem::path& path) {
    ControlFile f;
    f.path_ = path;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        if (ec && ec != std::errc::no_such_file_or_directory) throw sys_error(Exit::noinput, "cannot read", path, ec.value());
        return f;
    }
    LineReader in(path);
    std::string_view line;
    while (in.next(line)) f.lines_.emplace_back(line);
    f.exists_ = true;
    return f;
}

std::vector<std::string> ControlFile::entries() const {
    std::vector<std::string> out;
    for (auto& l : lines_) {
        auto e = control_entry(l);
        if (!e.empty()) out.emplace_back(e);
    }
    return out;
}

bool ControlFile::contains(std::string_view entry) const {
    for (auto& l : lines_)
        if (!entry.empty() && control_entry(l) == entry) return true;
    return false;
}

bool ControlFile::add(std::string_view entry) {
    if (contains(entry)) return false;
    lines_.emplace_back(entry);
    return true;
}

std::size_t ControlFile::remove(std::string_view entry) {
    std::size_t before = lines_.size();
    std::erase_if(lines_, [&](const std::string& l) { return !entry.empty() && control_entry(l) == entry; });
    return before - lines_.size();
}

void ControlFile::save(mode_t mode_if_new) const {
    std::string out;
    for (auto& l : lines_) {
        out += l;
        out += '\n';
    }
    replace_file(path_, out, mode_if_new);
}

}  // namespace qv
