// A group commit of file-system flushes: many threads each need "everything I wrote to this file
// system is durable", and one syncfs(2) can answer all of those that asked before it started. A caller
// joins the next batch; the first caller of a batch flushes for everyone in it (one syncfs per file
// system the batch touches) while later callers gather into the batch after it. So N concurrent
// deliveries cost about two flushes a batch instead of N.
//
// syncfs reports write-back errors since Linux 5.8; on older kernels a failed write-back may go
// unnoticed here (each file keeps its own error, which fsync would have reported).
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>

namespace qv {

class GroupSync {
public:
    GroupSync() = default;
    ~GroupSync();
    GroupSync(const GroupSync&) = delete;
    GroupSync& operator=(const GroupSync&) = delete;

    // Returns once a syncfs of the file system holding `path`, started after this call, has completed.
    // Throws Error 74 when the flush fails, or `path` cannot be opened.
    void sync(const std::filesystem::path& path);
    // The same for a file system known by its device (a file just written there, fstat'ed): a
    // descriptor on it (`path`, opened the first time) is kept for the next calls, so a caller flushing
    // for every message opens nothing. At most 16 file systems are remembered; each keeps one directory
    // open while this object lives.
    void sync(const std::filesystem::path& path, dev_t dev);

    std::uint64_t flushes() const;  // syncfs calls made so far
    std::uint64_t requests() const;  // sync() calls answered so far

private:
    // Waits for a flush of `dev` through `fd` (closed by the batch when `owned`) begun after the call.
    void join(const std::filesystem::path& path, dev_t dev, int fd, bool owned);
    mutable std::mutex mu_;
    std::map<dev_t, int> kept_;  // file system -> a descriptor kept on it (sync(path, dev))
    std::condition_variable done_;
    std::map<dev_t, std::pair<int, bool>> pending_;  // file system -> a descriptor on it, for the next
                                                     // batch, and whether the batch closes it
    std::uint64_t next_ticket_ = 1;  // the ticket the next caller gets
    std::uint64_t batch_first_ = 1;  // the first ticket of the batch being gathered
    std::uint64_t done_upto_ = 0;    // every ticket up to this one is answered
    struct Failure {
        std::uint64_t first;  // the batch's first ticket
        std::string why;
        std::uint64_t untold;  // its callers not yet told
    };
    std::map<std::uint64_t, Failure> errors_;  // the last ticket of a failed batch -> its tickets, why
    bool flushing_ = false;
    std::uint64_t flushes_ = 0, requests_ = 0;
};

}  // namespace qv
