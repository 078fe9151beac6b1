#include "qvmail/lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"

namespace qv {

FileLock::FileLock(const std::filesystem::path& path, std::chrono::milliseconds wait) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    // flock needs no write access: a user who may not write the lock file (made by root) still locks it
    if (fd_ < 0 && errno == EACCES) fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
        int e = errno;
        throw sys_error(e == ENOENT || e == EACCES || e == EROFS ? Exit::cantcreat : Exit::ioerr,
                        "cannot open the lock file", path, e);
    }
    auto deadline = std::chrono::steady_clock::now() + wait;
    auto pause = std::chrono::milliseconds(5);
    for (;;) {
        if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
        int e = errno;
        if (e == EINTR) continue;
        if (e != EWOULDBLOCK) {
            ::close(fd_);
            fd_ = -1;
            throw sys_error(Exit::ioerr, "cannot lock", path, e);
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            ::close(fd_);
            fd_ = -1;
            throw Error(Exit::tempfail, "another command holds the lock " + path.string() + "; try again later");
        }
        std::this_thread::sleep_for(pause);
        if (pause < std::chrono::milliseconds(100)) pause *= 2;
    }
}

FileLock::FileLock(FileLock&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) {
    other.fd_ = -1;
}

FileLock::~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

FileLock admin_lock(const Paths& paths, std::chrono::milliseconds wait) {
    return FileLock(paths.lock_file(), wait);
}

}  // namespace qv
