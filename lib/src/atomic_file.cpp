#include "qvmail/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "qvmail/error.hpp"

namespace qv {

void give_to(int fd, const std::filesystem::path& path, Owner owner) {
    struct stat st {};
    int r = fd >= 0 ? ::fstat(fd, &st) : ::lstat(path.c_str(), &st);
    if (r == 0 && st.st_uid == owner.uid && st.st_gid == owner.gid) return;
    r = fd >= 0 ? ::fchown(fd, owner.uid, owner.gid) : ::lchown(path.c_str(), owner.uid, owner.gid);
    if (r != 0) {
        int e = errno;
        throw sys_error(e == EPERM ? Exit::noperm : Exit::cantcreat,
                        "cannot give uid " + std::to_string(owner.uid) + " gid " + std::to_string(owner.gid) +
                            (e == EPERM ? " (that needs root)" : "") + " to",
                        path, e);
    }
}

AtomicFile::AtomicFile(std::filesystem::path target, mode_t mode_if_new, std::optional<Owner> owner_if_new)
    : target_(std::move(target)), mode_if_new_(mode_if_new), owner_if_new_(owner_if_new) {
    std::filesystem::path dir = target_.parent_path();
    if (dir.empty()) dir = ".";
    std::string pattern = (dir / ("." + target_.filename().string() + ".tmp.XXXXXX")).string();
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    fd_ = ::mkostemp(buf.data(), O_CLOEXEC);
    if (fd_ < 0) {
        int e = errno;
        throw sys_error(exit_for_create_errno(e), "cannot create a temporary file in", dir, e);
    }
    temp_ = std::filesystem::path(buf.data());
}

AtomicFile::~AtomicFile() {
    discard();
}

void AtomicFile::discard() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    if (!temp_.empty()) {
        ::unlink(temp_.c_str());
        temp_.clear();
    }
}

void AtomicFile::write(std::string_view data) {
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
        ssize_t n = ::write(fd_, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            throw sys_error(Exit::ioerr, "cannot write", temp_, e);
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

void AtomicFile::start_writeback() noexcept {
    if (fd_ >= 0) ::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
}

void AtomicFile::prepare() {
    if (prepared_) return;
    if (fd_ < 0) throw Error(Exit::software, "commit of a discarded temporary file for " + target_.string());
    struct stat st {};
    if (::stat(target_.c_str(), &st) == 0) {
        if (::fchmod(fd_, st.st_mode & 07777) != 0) {
            int e = errno;
            throw sys_error(Exit::cantcreat, "cannot set the mode of", temp_, e);
        }
        // Keep the owner when we can; an unprivileged caller replacing another user's file cannot,
        // and the file then belongs to the caller (as with tcprules or cdb).
        if ((st.st_uid != ::geteuid() || st.st_gid != ::getegid()) && ::fchown(fd_, st.st_uid, st.st_gid) != 0 &&
            errno != EPERM) {
            int e = errno;
            throw sys_error(Exit::cantcreat, "cannot set the owner of", temp_, e);
        }
    } else {
        if (::fchmod(fd_, mode_if_new_) != 0) {
            int e = errno;
            throw sys_error(Exit::cantcreat, "cannot set the mode of", temp_, e);
        }
        if (owner_if_new_) give_to(fd_, target_, *owner_if_new_);
    }
    if (::fsync(fd_) != 0) {
        int e = errno;
        throw sys_error(Exit::ioerr, "cannot sync", temp_, e);
    }
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {  // NFS reports write errors at close
        int e = errno;
        throw sys_error(Exit::ioerr, "cannot close", temp_, e);
    }
    prepared_ = true;
}

void AtomicFile::publish() {
    prepare();
    if (::rename(temp_.c_str(), target_.c_str()) != 0) {
        int e = errno;
        throw sys_error(exit_for_create_errno(e), "cannot rename the temporary file to", target_, e);
    }
    temp_.clear();
}

void AtomicFile::commit() {
    publish();
    std::filesystem::path dir = target_.parent_path();
    sync_directory(dir.empty() ? std::filesystem::path(".") : dir);
}

bool AtomicFile::commit_new() {
    prepare();
    if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, target_.c_str(), RENAME_NOREPLACE) != 0) {
        int e = errno;
        if (e == EEXIST) {
            discard();
            return false;
        }
        throw sys_error(exit_for_create_errno(e), "cannot rename the temporary file to", target_, e);
    }
    temp_.clear();
    std::filesystem::path dir = target_.parent_path();
    sync_directory(dir.empty() ? std::filesystem::path(".") : dir);
    return true;
}

bool create_file(const std::filesystem::path& target, std::string_view content, mode_t mode, std::optional<Owner> owner) {
    AtomicFile f(target, mode, owner);
    f.write(content);
    return f.commit_new();
}

void replace_file(const std::filesystem::path& target, std::string_view content, mode_t mode_if_new,
                  std::optional<Owner> owner_if_new) {
    AtomicFile f(target, mode_if_new, owner_if_new);
    f.write(content);
    f.commit();
}

void sync_directory(const std::filesystem::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;  // the rename itself succeeded; durability is best effort here
    ::fsync(fd);
    ::close(fd);
}

}  // namespace qv
