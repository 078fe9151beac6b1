// Line-oriented control files (rcpthosts, morercpthosts, relayclients, outgoingip, ...): read the
// entries, add and remove exact lines, keep comments, blank lines and order, write atomically.
// The file is held as its text, so that adding to a file of many thousand lines costs one scan.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qv {

// A line's entry: the line without trailing blanks (space, tab, CR); empty for comment ('#') lines.
std::string_view control_entry(std::string_view line) noexcept;

class ControlFile {
public:
    // Loads `path`; a missing file is an empty one (exists() is false). Throws Error 66 if unreadable.
    static ControlFile load(const std::filesystem::path& path);

    const std::filesystem::path& path() const noexcept { return path_; }
    bool exists() const noexcept { return exists_; }
    // The whole text as it will be written: every line ends with '\n'.
    const std::string& text() const noexcept { return text_; }
    std::vector<std::string_view> lines() const;
    // The entries, in order: non-comment, non-blank lines without trailing blanks.
    std::vector<std::string> entries() const;
    std::size_t count_entries() const;

    bool contains(std::string_view entry) const;
    // Appends `entry` unless an identical entry is present; returns whether it was added.
    bool add(std::string_view entry);
    // Removes every line whose entry equals `entry` exactly (never a prefix); returns how many.
    std::size_t remove(std::string_view entry);
    // Writes the file atomically (new files get `mode_if_new`).
    void save(mode_t mode_if_new = 0644) const;

    // Calls `fn` for each line (without '\n') until it returns false.
    void for_each_line(const std::function<bool(std::string_view)>& fn) const;

private:
    std::filesystem::path path_;
    bool exists_ = false;
    std::string text_;
};

struct Paths;

// The first entry of control file `name` (CONTROLDIR), as qmail's control_rldef reads me, envnoathost...;
// nullopt when the file is missing or has no entry. Throws Error 66 if unreadable.
std::optional<std::string> control_first_line(const Paths& paths, std::string_view name);
// A decimal number; nullopt for anything else (signs, blanks, overflow).
std::optional<std::uint64_t> parse_decimal(std::string_view s);
// The number in control file `name`, or `dflt` when the file is missing. Throws Error 78 naming the file
// when it holds something else.
std::uint64_t control_number(const Paths& paths, std::string_view name, std::uint64_t dflt);

}  // namespace qv
