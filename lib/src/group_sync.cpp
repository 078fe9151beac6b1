// A group commit of file-system flushes. See group_sync.hpp.
#include "qvmail/group_sync.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "qvmail/error.hpp"

namespace qv {

GroupSync::~GroupSync() {
    for (auto& [dev, p] : pending_)
        if (p.second) ::close(p.first);
    for (auto& [dev, fd] : kept_) ::close(fd);
}

namespace {

// A descriptor on `path` for syncfs, and the file system it is on. Throws Error 74.
int open_on(const std::filesystem::path& path, dev_t& dev) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) throw sys_error(Exit::ioerr, "cannot open", path, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        throw sys_error(Exit::ioerr, "cannot stat", path, e);
    }
    dev = st.st_dev;
    return fd;
}

}  // namespace

void GroupSync::sync(const std::filesystem::path& path) {
    dev_t dev = 0;
    int fd = open_on(path, dev);
    join(path, dev, fd, true);
}

void GroupSync::sync(const std::filesystem::path& path, dev_t dev) {
    {
        std::unique_lock<std::mutex> g(mu_);
        if (auto it = kept_.find(dev); it != kept_.end()) {
            g.unlock();
            join(path, dev, it->second, false);  // kept_ only grows: the descriptor stays valid
            return;
        }
    }
    dev_t on = 0;
    int fd = open_on(path, on);
    bool keep = false;
    if (on == dev) {  // else `path` is not where the caller thinks: flush where it is, keep nothing
        std::lock_guard<std::mutex> g(mu_);
        if (kept_.size() < 16 && kept_.emplace(dev, fd).second) keep = true;
    }
    join(path, on, fd, !keep);
}

void GroupSync::join(const std::filesystem::path& path, dev_t dev, int fd, bool owned) {
    std::unique_lock<std::mutex> g(mu_);
    const std::uint64_t ticket = next_ticket_++;
    if (auto [it, added] = pending_.emplace(dev, std::make_pair(fd, owned)); !added && owned) ::close(fd);
    while (done_upto_ < ticket) {
        if (flushing_) {  // a batch is being flushed without us: wait for it, then lead or join the next
            done_.wait(g);
            continue;
        }
        // lead the batch gathered so far (ours included)
        flushing_ = true;
        std::map<dev_t, std::pair<int, bool>> batch;
        batch.swap(pending_);
        const std::uint64_t first = batch_first_, last = next_ticket_ - 1;
        batch_first_ = last + 1;
        g.unlock();
        std::string error;
        std::uint64_t n = 0;
        for (auto& [bdev, bfd] : batch) {
            ++n;
            if (::syncfs(bfd.first) != 0 && error.empty()) error = std::strerror(errno);
            if (bfd.second) ::close(bfd.first);
        }
        g.lock();
        flushes_ += n;
        if (!error.empty()) errors_[last] = {first, error, last - first + 1};
        done_upto_ = last;
        flushing_ = false;
        done_.notify_all();
    }
    ++requests_;
    // the batch that held our ticket, if it failed: kept until each of its callers has been told
    auto it = errors_.lower_bound(ticket);
    if (it != errors_.end() && it->second.first <= ticket) {
        std::string why = it->second.why;
        if (--it->second.untold == 0) errors_.erase(it);
        throw Error(Exit::ioerr, "cannot flush the file system of " + path.string() + ": " + why);
    }
}

std::uint64_t GroupSync::flushes() const {
    std::lock_guard<std::mutex> g(mu_);
    return flushes_;
}

std::uint64_t GroupSync::requests() const {
    std::lock_guard<std::mutex> g(mu_);
    return requests_;
}

}  // namespace qv
