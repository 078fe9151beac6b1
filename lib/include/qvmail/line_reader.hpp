// Buffered reading of a file line by line, as qmail's getln does: bytes are taken as they are
// (NUL included), a line ends at '\n', and the last line may lack one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace qv {

class LineReader {
public:
    // Opens `path` for reading; throws Error (66 for a missing or unreadable file).
    explicit LineReader(const std::filesystem::path& path);
    // Reads an already-open descriptor (not closed by the reader); `name` is used in messages.
    LineReader(int fd, std::filesystem::path name);
    // Reads text held in memory (a file's new content, before it is written). The text is not
    // copied: it must outlive the reader.
    static LineReader from_text(std::string_view text, std::filesystem::path name);
    ~LineReader();
    LineReader(LineReader&& other) noexcept;
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;

    // The next line without its '\n'; false at end of input. The view is valid until the next call.
    bool next(std::string_view& line);
    // Whether the line last returned ended with '\n'.
    bool had_newline() const noexcept { return had_newline_; }
    // 1-based number of the line last returned.
    std::uint64_t line_number() const noexcept { return lineno_; }
    const std::filesystem::path& name() const noexcept { return name_; }

private:
    LineReader() = default;
    bool fill();

    int fd_ = -1;
    bool owns_fd_ = false;
    std::filesystem::path name_;
    std::vector<char> buf_;
    const char* text_ = nullptr;  // from_text: the caller's bytes, used instead of buf_
    std::size_t begin_ = 0, end_ = 0;
    bool eof_ = false;
    bool had_newline_ = false;
    std::uint64_t lineno_ = 0;
};

}  // namespace qv
