#include <catch2/catch.hpp>

#include "qvmail/address.hpp"
#include "qvmail/delivery_instruction.hpp"
#include "qvmail/error.hpp"

TEST_CASE("domain names are lower-cased and checked", "[address]") {
    CHECK(qv::normalize_domain("Example.COM") == "example.com");
    CHECK(qv::normalize_domain("mail-1.example_net.org") == "mail-1.example_net.org");
    CHECK(qv::normalize_domain("xn--bcher-kva.xn--p1ai") == "xn--bcher-kva.xn--p1ai");
    for (const char* bad : {"", "localhost", "example..com", ".example.com", "example.com.", "-ex.com", "ex-.com",
                            "exa mple.com", "exa/mple.com", "example.c0m", "example.123", "ex$ample.com"}) {
        INFO(bad);
        CHECK_THROWS_AS(qv::normalize_domain(bad), qv::Error);
    }
    CHECK_THROWS_WITH(qv::normalize_domain("b\xc3\xbc"
                                           "cher.example"),
                      Catch::Contains("punycode"));
    CHECK_THROWS_WITH(qv::normalize_domain(std::string(60, 'a') + ".example"), Catch::Contains("67"));
    CHECK_THROWS_WITH(qv::normalize_domain(std::string(64, 'a') + ".co"), Catch::Contains("63"));
    try {
        qv::normalize_domain("a..b");
    } catch (const qv::Error& e) {
        CHECK(e.code() == qv::Exit::dataerr);
        CHECK_THAT(e.what(), Catch::Contains(".."));
    }
}

TEST_CASE("mailbox names are lower-cased and checked", "[address]") {
    CHECK(qv::normalize_local("John.Doe") == "john.doe");
    CHECK(qv::normalize_local("a+tag=x_y-z") == "a+tag=x_y-z");
    for (const char* bad :
         {"", ".john", "-john", "john.", "jo..hn", "jo hn", "jo'hn", "jo$hn", "jo|hn", "jo:hn", "jo/hn", "jo&hn"}) {
        INFO(bad);
        CHECK_THROWS_AS(qv::normalize_local(bad), qv::Error);
    }
    CHECK_THROWS_AS(qv::normalize_local(std::string(41, 'a')), qv::Error);
    CHECK(qv::normalize_local(std::string(40, 'a')).size() == 40);
    auto a = qv::parse_address("Joe@Example.com");
    CHECK(a.str() == "joe@example.com");
    CHECK_THROWS_AS(qv::parse_address("no-at-sign"), qv::Error);
}

TEST_CASE("every handler form is accepted verbatim", "[delivery]") {
    struct Case {
        const char* text;
        qv::HandlerKind kind;
    };
    for (auto c : {Case{"delete", qv::HandlerKind::discard}, Case{"bounce-no-mailbox", qv::HandlerKind::bounce},
                   Case{"/var/indimail/domains/x/catchall/Maildir/", qv::HandlerKind::maildir},
                   Case{"/home/mail/L2P/x/postmaster/Maildir", qv::HandlerKind::maildir},
                   Case{"postmaster@example.com", qv::HandlerKind::forward},
                   Case{"Some.One+tag@Example.org", qv::HandlerKind::forward},
                   Case{"example.com:192.168.1.1:25", qv::HandlerKind::route},
                   Case{"example.com:mx.example.net:2525", qv::HandlerKind::route},
                   Case{"example.com:[::1]:25", qv::HandlerKind::route},
                   Case{"example.com:[2001:db8::1]:587", qv::HandlerKind::route}}) {
        INFO(c.text);
        auto h = qv::parse_handler(c.text);
        CHECK(h.kind == c.kind);
        CHECK(h.text == c.text);
    }
}

TEST_CASE("malformed handlers are refused", "[delivery]") {
    for (const char* bad : {"",
                            "postmaster",
                            "bounce",
                            "Maildir/",
                            "./Maildir/",
                            "/a/../b",
                            "/a b",
                            "/a;rm -rf",
                            "/a$(x)",
                            "x@",
                            "@example.com",
                            "a'b@example.com",
                            "a@exa mple.com",
                            "a@nodot",
                            "example.com:1.2.3.4",
                            "example.com:1.2.3.4:",
                            "example.com:1.2.3.4:0",
                            "example.com:1.2.3.4:65536",
                            "example.com:1.2.3.999:25",
                            "example.com:::1:25",
                            "example.com:2001:db8::1:25",
                            "example.com:[::1]25",
                            "example.com:[nothex]:25",
                            "bad_domain:1.2.3.4:25",
                            "example.com:host_name:25"}) {
        INFO(bad);
        CHECK_THROWS_AS(qv::parse_handler(bad), qv::Error);
    }
    CHECK_THROWS_WITH(qv::parse_handler("example.com:2001:db8::1:25"), Catch::Contains("brackets"));
    CHECK_THROWS_WITH(qv::parse_handler("Maildir/"), Catch::Contains("absolute"));
}

TEST_CASE(".qmail-default lines", "[delivery]") {
    CHECK(qv::format_qmail_default("/usr/sbin", {false, "bounce-no-mailbox"}) ==
          "| /usr/sbin/vdelivermail '' bounce-no-mailbox\n");
    CHECK(qv::format_qmail_default("/usr/sbin", {true, "delete"}) == "| /usr/sbin/vfilter '' delete\n");
    auto d = qv::parse_qmail_default("| /usr/sbin/vfilter '' postmaster@example.com\n");
    REQUIRE(d);
    CHECK(d->vfilter);
    CHECK(d->handler == "postmaster@example.com");
    CHECK_FALSE(qv::parse_qmail_default("| /usr/bin/procmail\n"));
    CHECK_FALSE(qv::parse_qmail_default("./Maildir/\n"));
}

TEST_CASE("a .qmail line is read as qmail-local reads it", "[delivery]") {
    using K = qv::DotQmailLine;
    auto c = [](std::string_view l) { return qv::classify_dot_qmail_line(l); };
    CHECK(c("").kind == K::nothing);
    CHECK(c("# a comment").kind == K::nothing);
    CHECK((c("|/usr/bin/logger -t x").kind == K::program && c("|/usr/bin/logger -t x").text == "/usr/bin/logger -t x"));
    CHECK((c("/var/mail/joe/").kind == K::path && c("/var/mail/joe/").text == "/var/mail/joe/"));
    CHECK(c("./Maildir/").kind == K::path);
    CHECK(c(".mbox").kind == K::path);
    CHECK((c("&joe@example.com").kind == K::forward && c("&joe@example.com").text == "joe@example.com"));
    CHECK((c("joe@example.com").kind == K::forward && c("joe@example.com").text == "joe@example.com"));
}
