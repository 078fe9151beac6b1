// Advisory locks with flock(2). The admin lock ($QMAILHOME/.qvmail.lock) is held by every command
// that changes files, cdbs or tables, so two administrators never interleave their edits.
#pragma once

#include <chrono>
#include <filesystem>

namespace qv {

class FileLock {
public:
    // Takes an exclusive lock on `path` (created 0644 if missing), waiting up to `wait` (zero: do not
    // wait). Throws Error 75 when the lock stays held, 73 when the lock file cannot be created.
    FileLock(const std::filesystem::path& path, std::chrono::milliseconds wait);
    ~FileLock();
    FileLock(FileLock&& other) noexcept;
    FileLock& operator=(FileLock&&) = delete;
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }

private:
    std::filesystem::path path_;
    int fd_ = -1;
};

struct Paths;

// The admin lock of this QMAILHOME.
FileLock admin_lock(const Paths& paths, std::chrono::milliseconds wait = std::chrono::seconds(30));

}  // namespace qv
