// Replacing a file atomically: write a temporary file in the same directory, fsync it, give it the
// mode and owner of the file it replaces, rename it over the target and fsync the directory. A crash
// at any point leaves either the old file or the new one, never a mix; a discarded or failed write
// leaves no temporary file behind.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace qv {

class AtomicFile {
public:
    // Creates the temporary file next to `target`. `mode_if_new` applies when `target` does not exist;
    // otherwise its mode and owner are kept. Throws Error 73 when the directory is not writable.
    explicit AtomicFile(std::filesystem::path target, mode_t mode_if_new = 0644);
    ~AtomicFile();  // discards an uncommitted temporary file
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    int fd() const noexcept { return fd_; }
    const std::filesystem::path& target() const noexcept { return target_; }
    const std::filesystem::path& temp_path() const noexcept { return temp_; }

    void write(std::string_view data);  // throws Error 74 on a write error
    void commit();                      // fsync, chmod/chown, close, rename, fsync the directory
    void discard() noexcept;

private:
    std::filesystem::path target_;
    std::filesystem::path temp_;
    mode_t mode_if_new_;
    int fd_ = -1;
};

// Whole-file convenience: replace `target` with `content`.
void replace_file(const std::filesystem::path& target, std::string_view content, mode_t mode_if_new = 0644);

// fsync a directory so that a rename or unlink in it is durable.
void sync_directory(const std::filesystem::path& dir);

}  // namespace qv
