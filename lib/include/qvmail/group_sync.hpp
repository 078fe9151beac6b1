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

    std::uint64_t flushes() const;  // syncfs calls made so far
    std::uint64_t requests() const;  // sync() calls answered so far

private:
    mutable std::mutex mu_;
    std::condition_variable done_;
    std::map<dev_t, int> pending_;  // file system -> a descriptor on it, for the next batch
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
