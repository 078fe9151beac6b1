#include <catch2/catch.hpp>

#include "qvmail/message.hpp"

namespace {

std::vector<std::pair<std::string, std::string>> fields(const qv::Message& m, unsigned part = 0) {
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& f : m.headers)
        if (f.part == part) out.emplace_back(f.name, f.value);
    return out;
}

using Fields = std::vector<std::pair<std::string, std::string>>;

}  // namespace

TEST_CASE("header fields: unfolding, line ends, the end of the header", "[message]") {
    auto m = qv::parse_message(
        "From sender@example.com Sat Nov 28 07:00:00 2026\n"  // an mbox separator
        "Subject: one\n"
        " two\r\n"
        "\tthree  \r\n"
        "X-Empty:\n"
        "X-Spaced  : value\n"
        "\n"
        "Not-A-Header: this is the body\n");
    CHECK(fields(m) == Fields{{"Subject", "one two three"}, {"X-Empty", ""}, {"X-Spaced", "value"}});
    CHECK(m.size > 0);
    // a line that is neither a field nor a continuation starts the body
    m = qv::parse_message("Subject: s\nthis line has no colon\nX-Late: not a field\n");
    CHECK(fields(m) == Fields{{"Subject", "s"}});
    // a continuation before any field is ignored; a message without a body is fine
    m = qv::parse_message(" orphan\nTo: a@example.com");
    CHECK(fields(m) == Fields{{"To", "a@example.com"}});
    CHECK(qv::parse_message("").headers.empty());
    CHECK(qv::unfold("a\r\n b\n\t\tc") == "a b c");
    CHECK(qv::unfold("a \r\n  b\nc") == "a  bc");
}

TEST_CASE("RFC 2047 encoded words", "[message]") {
    CHECK(qv::decode_encoded_words("=?UTF-8?B?w5xiZXI=?=") == "Über");
    CHECK(qv::decode_encoded_words("=?utf-8?q?caf=C3=A9_au_lait?=") == "café au lait");
    CHECK(qv::decode_encoded_words("=?ISO-8859-1?Q?caf=E9?=") == "café");    // to UTF-8
    CHECK(qv::decode_encoded_words("=?windows-1252?Q?=80uro?=") == "€uro");  // to UTF-8
    CHECK(qv::decode_encoded_words("=?UTF-8?Q?a?= =?UTF-8?Q?b?=") == "ab");  // blanks between words go
    CHECK(qv::decode_encoded_words("=?UTF-8?Q?a?=\n =?UTF-8?Q?b?=") == "ab");
    CHECK(qv::decode_encoded_words("x =?UTF-8?Q?a?= y") == "x a y");   // other blanks stay
    CHECK(qv::decode_encoded_words("=?UTF-8*en?Q?a?=") == "a");        // RFC 2231 language
    CHECK(qv::decode_encoded_words("=?UTF-8?B?w5xiZXI?=") == "Über");  // padding missing
    CHECK(qv::decode_encoded_words("=?x-unknown?Q?abc?=") == "abc");   // unknown charset: bytes
    // not encoded words: left as they are
    for (const char* s :
         {"=?UTF-8?X?abc?=", "=?UTF-8?B?!!!?=", "=?UTF-8?Q?a b?=", "=??Q?a?=", "=?UTF-8?Q?abc", "price =? 5", "=?"}) {
        INFO(s);
        CHECK(qv::decode_encoded_words(s) == s);
    }
    // thousands of beginnings of encoded words that never end: read in one pass, left as they are
    std::string hostile;
    for (int i = 0; i < 150000; ++i) hostile += "=?a?q?x";
    CHECK(qv::decode_encoded_words(hostile) == hostile);
    std::string no_question;
    for (int i = 0; i < 300000; ++i) no_question += "=?a";
    CHECK(qv::decode_encoded_words(no_question) == no_question);
    auto m = qv::parse_message("Subject: " + hostile + "\n\n");
    REQUIRE(m.headers.size() == 1);
    CHECK(m.headers[0].value.size() == hostile.size());
    // invalid bytes in a charset become U+FFFD
    CHECK(qv::decode_encoded_words("=?UTF-16BE?B?2D0=?=") == "\xEF\xBF\xBD");  // a lone surrogate
}

TEST_CASE("case folding for comparisons", "[message]") {
    CHECK(qv::fold_case("Hello WORLD") == "hello world");
    CHECK(qv::fold_case("ÜBER Ärger ÉTÉ") == "über ärger été");
    CHECK(qv::fold_case("ΣΟΦΙΑ") == "σοφια");
    CHECK(qv::fold_case("bad \xff\xfe bytes") == "bad \xff\xfe bytes");
    CHECK(qv::fold_case("\xC3") == "\xC3");  // cut short
}

TEST_CASE("addresses of To, Cc and Bcc", "[message]") {
    using V = std::vector<std::string>;
    CHECK(qv::header_addresses("a@example.com") == V{"a@example.com"});
    CHECK(qv::header_addresses("Joe <JOE@Example.COM>, b@example.org") == V{"joe@example.com", "b@example.org"});
    CHECK(qv::header_addresses("\"Doe, John\" <john@example.com>") == V{"john@example.com"});
    CHECK(qv::header_addresses("x@example.com (Mr. X, <not@this.one>)") == V{"x@example.com"});
    CHECK(qv::header_addresses("undisclosed-recipients:;") == V{});
    CHECK(qv::header_addresses("friends: a@x.example, b@y.example;, c@z.example") ==
          V{"a@x.example", "b@y.example", "c@z.example"});
    CHECK(qv::header_addresses("<@relay.example:joe@example.com>") == V{"joe@example.com"});
    CHECK(qv::header_addresses("\"john smith\"@example.com") == V{"\"john smith\"@example.com"});
    CHECK(qv::header_addresses("") == V{});
}

TEST_CASE("structured field parameters", "[message]") {
    CHECK(qv::header_parameter("multipart/mixed; boundary=\"a b\\\"c\"", "boundary") == "a b\"c");
    CHECK(qv::header_parameter("multipart/mixed;\n BOUNDARY=xyz; charset=utf-8", "boundary") == "xyz");
    CHECK(qv::header_parameter("text/plain; charset=utf-8", "Charset") == "utf-8");
    CHECK(qv::header_parameter("text/plain", "charset").empty());
    CHECK(qv::header_parameter("text/plain; broken", "charset").empty());
}

TEST_CASE("the headers of MIME parts, nested, with limits", "[message]") {
    std::string msg =
        "Content-Type: multipart/mixed; boundary=outer\n"
        "Subject: top\n"
        "\n"
        "--outer\n"
        "Content-Type: multipart/alternative; boundary=\"inner\"\n"
        "\n"
        "--inner\n"
        "Content-Type: text/plain\n"
        "\n"
        "--outer-not-a-delimiter\n"
        "--inner\n"
        "Content-Type: text/html\n"
        "\n"
        "<p>\n"
        "--inner--\n"
        "--outer\n"
        "Content-Type: application/pdf\n"
        "Content-Disposition: attachment; filename=\"=?UTF-8?Q?R=C3=A9sum=C3=A9.pdf?=\"\n"
        "\n"
        "%PDF\n"
        "--outer--\n"
        "epilogue\n";
    auto m = qv::parse_message(msg);
    CHECK(fields(m) == Fields{{"Content-Type", "multipart/mixed; boundary=outer"}, {"Subject", "top"}});
    std::vector<std::string> types;
    for (auto& f : m.headers)
        if (f.part > 0 && f.name == "Content-Type") types.push_back(f.value);
    CHECK(types == std::vector<std::string>{"multipart/alternative; boundary=\"inner\"", "text/plain", "text/html",
                                            "application/pdf"});
    CHECK(m.parts == 4);
    CHECK_FALSE(m.parts_truncated);
    bool decoded = false;
    for (auto& f : m.headers) decoded = decoded || f.value.find("Résumé.pdf") != std::string::npos;
    CHECK(decoded);

    // more parts than the limit: the first ones are read, and the message says so
    std::string many = "Content-Type: multipart/mixed; boundary=b\n\n";
    for (unsigned i = 0; i < qv::kMaxMimeParts + 10; ++i) many += "--b\nX-Part: " + std::to_string(i) + "\n\nx\n";
    many += "--b--\n";
    m = qv::parse_message(many);
    CHECK(m.parts == qv::kMaxMimeParts);
    CHECK(m.parts_truncated);

    // nesting deeper than the limit
    std::string deep;
    for (unsigned i = 0; i <= qv::kMaxMimeDepth + 2; ++i)
        deep += "Content-Type: multipart/mixed; boundary=d" + std::to_string(i) + "\n\n--d" + std::to_string(i) + "\n";
    m = qv::parse_message(deep);
    CHECK(m.parts_truncated);
    CHECK(m.parts == qv::kMaxMimeDepth);
}
