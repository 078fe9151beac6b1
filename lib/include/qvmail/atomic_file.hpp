// Replacing a file atomically: write a temporary file in the same directory, fsync it, give it the
// mode and owner of the file it replaces, rename it over the target and fsync the directory. A crash
// at any point leaves either the old file or the new one, never a mix; a discarded or failed write
// leaves no temporary file behind.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace qv {

struct Owner {
    uid_t uid;
    gid_t gid;
    bool operator==(const Owner&) const = default;
};

class AtomicFile {
public:
    // Creates the temporary file next to `target`. When `target` does not exist the new file gets
    // `mode_if_new` and, if given, `owner_if_new`; otherwise the mode and owner of `target` are kept.
    // Throws Error 73 when the directory is not writable.
    explicit AtomicFile(std::filesystem::path target, mode_t mode_if_new = 0644,
                        std::optional<Owner> owner_if_new = std::nullopt);
    ~AtomicFile();  // discards an uncommitted temporary file
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    int fd() const noexcept { return fd_; }
    const std::filesystem::path& target() const noexcept { return target_; }
    const std::filesystem::path& temp_path() const noexcept { return temp_; }

    void write(std::string_view data);  // throws Error 74 on a write error
    void start_writeback() noexcept;    // ask the kernel to start writing the data out (before prepare)
    void prepare();                     // set mode and owner, fsync, close (once)
    void publish();                     // rename the prepared file over the target (no directory sync)
    void commit();                      // prepare, publish, fsync the directory
    bool commit_new();                  // commit, unless the target exists: then false, and nothing changed
    void discard() noexcept;

private:
    std::filesystem::path target_;
    std::filesystem::path temp_;
    mode_t mode_if_new_;
    std::optional<Owner> owner_if_new_;
    int fd_ = -1;
    bool prepared_ = false;
};

// Whole-file convenience: replace `target` with `content`.
void replace_file(const std::filesystem::path& target, std::string_view content, mode_t mode_if_new = 0644,
                  std::optional<Owner> owner_if_new = std::nullopt);

// Creates `target` with `content` (atomically, as replace_file) unless it exists: false then, and the
// file that is there is left untouched.
bool create_file(const std::filesystem::path& target, std::string_view content, mode_t mode = 0644,
                 std::optional<Owner> owner = std::nullopt);

// fsync a directory so that a rename or unlink in it is durable.
void sync_directory(const std::filesystem::path& dir);

// Gives `path` (opened as `fd`, or by name when fd < 0) to `owner` unless it already belongs to it.
// Throws Error 77 when that needs privileges the caller lacks.
void give_to(int fd, const std::filesystem::path& path, Owner owner);

}  // namespace qv
