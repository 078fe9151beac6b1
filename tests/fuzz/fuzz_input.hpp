// Fuzz inputs become files: the parsers under test read descriptors and paths, as in production.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace qvfuzz {

// One anonymous in-memory file, rewritten for every input.
class MemFile {
public:
    MemFile() : fd_(::memfd_create("qvfuzz", MFD_CLOEXEC)) {
        if (fd_ < 0) std::abort();
    }
    void set(const std::uint8_t* data, std::size_t size) {
        if (::ftruncate(fd_, 0) != 0) std::abort();
        std::size_t done = 0;
        while (done < size) {
            ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
            if (n <= 0) std::abort();
            done += static_cast<std::size_t>(n);
        }
        if (::lseek(fd_, 0, SEEK_SET) != 0) std::abort();
    }
    int fd() const { return fd_; }
    std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

private:
    int fd_;
};

}  // namespace qvfuzz
