#include "qvmail/line_reader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "qvmail/error.hpp"

namespace qv {

namespace {
constexpr std::size_t kChunk = 1 << 16;
}

LineReader::LineReader(const std::filesystem::path& path) : name_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
        int e = errno;
        throw sys_error(exit_for_read_errno(e), "cannot open", path, e);
    }
    owns_fd_ = true;
    buf_.resize(kChunk);
}

LineReader::LineReader(int fd, std::filesystem::path name) : fd_(fd), name_(std::move(name)) {
    buf_.resize(kChunk);
}

LineReader::LineReader(LineReader&& o) noexcept
    : fd_(o.fd_),
      owns_fd_(o.owns_fd_),
      name_(std::move(o.name_)),
      buf_(std::move(o.buf_)),
      text_(o.text_),
      begin_(o.begin_),
      end_(o.end_),
      eof_(o.eof_),
      had_newline_(o.had_newline_),
      lineno_(o.lineno_) {
    o.fd_ = -1;
    o.owns_fd_ = false;
}

LineReader LineReader::from_text(std::string_view text, std::filesystem::path name) {
    LineReader r;
    r.name_ = std::move(name);
    r.text_ = text.data();
    r.end_ = text.size();
    r.eof_ = true;
    return r;
}

LineReader::~LineReader() {
    if (owns_fd_ && fd_ >= 0) ::close(fd_);
}

bool LineReader::fill() {
    if (eof_) return false;
    if (begin_ > 0) {
        std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);  // a line longer than the buffer
    for (;;) {
        ssize_t n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            throw sys_error(Exit::ioerr, "cannot read", name_, e);
        }
        if (n == 0) {
            eof_ = true;
            return false;
        }
        end_ += static_cast<std::size_t>(n);
        return true;
    }
}

bool LineReader::next(std::string_view& line) {
    if (text_) {
        if (begin_ >= end_) return false;
        const void* nl = std::memchr(text_ + begin_, '\n', end_ - begin_);
        std::size_t stop = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - text_) : end_;
        line = std::string_view(text_ + begin_, stop - begin_);
        had_newline_ = nl != nullptr;
        begin_ = nl ? stop + 1 : end_;
        ++lineno_;
        return true;
    }
    std::size_t scanned = begin_;
    for (;;) {
        const void* nl = end_ > scanned ? std::memchr(buf_.data() + scanned, '\n', end_ - scanned) : nullptr;
        if (nl) {
            std::size_t pos = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.data());
            line = std::string_view(buf_.data() + begin_, pos - begin_);
            begin_ = pos + 1;
            had_newline_ = true;
            ++lineno_;
            return true;
        }
        std::size_t offset = end_ - begin_;
        if (!fill()) {
            if (end_ == begin_) return false;
            line = std::string_view(buf_.data() + begin_, end_ - begin_);
            begin_ = end_;
            had_newline_ = false;
            ++lineno_;
            return true;
        }
        scanned = begin_ + offset;
    }
}

}  // namespace qv
