#include <catch2/catch.hpp>

#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/store.hpp"
#include "qvmail/user.hpp"

TEST_CASE("quotas normalise to IndiMail's stored forms", "[user]") {
    CHECK(qv::normalize_quota("NOQUOTA") == "NOQUOTA");
    CHECK(qv::normalize_quota("noquota") == "NOQUOTA");
    CHECK(qv::normalize_quota("1048576") == "1048576");
    CHECK(qv::normalize_quota("100M") == "104857600");
    CHECK(qv::normalize_quota("2g") == "2147483648");
    CHECK(qv::normalize_quota("512k") == "524288");
    CHECK(qv::normalize_quota("100M,1000") == "104857600S,1000C");
    CHECK(qv::normalize_quota("5000S,20C") == "5000S,20C");
    for (const char* bad : {"", "M", "10X", "-5", "1,", ",5", "1.5M", "99999999999999999999"}) {
        INFO(bad);
        CHECK_THROWS_AS(qv::normalize_quota(bad), qv::Error);
    }
    auto q = qv::parse_quota("104857600S,1000C");
    CHECK(q.bytes == 104857600u);
    CHECK(q.count == 1000u);
    CHECK_FALSE(qv::parse_quota("NOQUOTA").bytes);
}

TEST_CASE("comments cannot break the record", "[user]") {
    CHECK(qv::check_gecos("John Doe") == "John Doe");
    CHECK_THROWS_AS(qv::check_gecos("a:b"), qv::Error);
    CHECK_THROWS_AS(qv::check_gecos("a\nb"), qv::Error);
    CHECK_THROWS_AS(qv::check_gecos(std::string(49, 'x')), qv::Error);
}

TEST_CASE("IndiMail's letter buckets", "[user]") {
    CHECK(qv::mailbox_bucket("alice") == "A2E");
    CHECK(qv::mailbox_bucket("Eve") == "A2E");
    CHECK(qv::mailbox_bucket("frank") == "F2K");
    CHECK(qv::mailbox_bucket("postmaster") == "L2P");
    CHECK(qv::mailbox_bucket("sam") == "Q2S");
    CHECK(qv::mailbox_bucket("tom") == "T2Zsym");
    CHECK(qv::mailbox_bucket("0day") == "T2Zsym");
}

TEST_CASE("vpasswd lines round-trip", "[user]") {
    qv::UserRecord u;
    u.name = "john";
    u.passwd = "$6$abc$def";
    u.uid_flags = 1;
    u.gid_flags = qv::userflag::no_pop | qv::userflag::no_smtp;
    u.gecos = "John Doe";
    u.dir = "/home/mail/F2K/example.com/john";
    u.quota = "104857600S,1000C";
    std::string line = qv::format_vpasswd_line(u);
    CHECK(line == "john:$6$abc$def:1:514:John Doe:/home/mail/F2K/example.com/john:104857600S,1000C");
    auto back = qv::parse_vpasswd_line(line);
    REQUIRE(back);
    CHECK(back->name == u.name);
    CHECK(back->gid_flags == u.gid_flags);
    CHECK(back->quota == u.quota);
    CHECK_FALSE(qv::parse_vpasswd_line("too:few:fields"));
    CHECK_FALSE(qv::parse_vpasswd_line("a:b:x:0:g:/d:q"));
    CHECK(qv::qmail_alias_file("john.doe") == ".qmail-john:doe");
}

TEST_CASE("IndiMail's flag bits", "[user]") {
    CHECK(qv::userflag::no_smtp == 0x200u);
    CHECK(qv::userflag::v_override == 0x100u);
    CHECK(qv::parse_flag_name("no-relay") == qv::userflag::no_relay);
    CHECK_FALSE(qv::parse_flag_name("no-such"));
}
