#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "qvmail/error.hpp"
#include "qvmail/line_reader.hpp"

using namespace std::string_literals;

namespace {
std::vector<std::string> read_all(qv::LineReader& in, std::vector<bool>* newlines = nullptr) {
    std::vector<std::string> out;
    std::string_view l;
    while (in.next(l)) {
        out.emplace_back(l);
        if (newlines) newlines->push_back(in.had_newline());
    }
    return out;
}
}  // namespace

TEST_CASE("lines from memory, including empty text and a last line without newline", "[line_reader]") {
    auto empty = qv::LineReader::from_text("", "x");
    CHECK(read_all(empty).empty());
    const std::string text = "a\n\nb\0c\nlast"s;  // from_text does not copy: the text must outlive the reader
    auto t = qv::LineReader::from_text(text, "x");
    std::vector<bool> nl;
    CHECK(read_all(t, &nl) == std::vector<std::string>{"a", "", "b\0c"s, "last"});
    CHECK(nl == std::vector<bool>{true, true, true, false});
    CHECK(t.line_number() == 4);
}

TEST_CASE("lines from a file, longer than the buffer", "[line_reader]") {
    qvtest::TempDir d;
    std::string big(200000, 'x');
    qvtest::write(d / "f", "short\n" + big + "\nend\n");
    qv::LineReader in(d / "f");
    CHECK(read_all(in) == std::vector<std::string>{"short", big, "end"});
    CHECK_THROWS_AS(qv::LineReader(d / "missing"), qv::Error);
}
