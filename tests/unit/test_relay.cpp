#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/relay.hpp"
#include "qvmail/store.hpp"

using qvtest::TempDir;

TEST_CASE("relay control entries are checked and normalised", "[relay]") {
    CHECK(qv::relayclients_entry("10.1.1.") == "10.1.1.:");
    CHECK(qv::relayclients_entry("10.1.1.5") == "10.1.1.5:");
    CHECK(qv::relayclients_entry("10.1.1.5:@fix.me") == "10.1.1.5:@fix.me");
    CHECK(qv::relaydomains_entry(".Example.COM") == ".example.com:");
    CHECK(qv::relaydomains_entry("relay.partner.org:") == "relay.partner.org:");
    CHECK(qv::relaymailfrom_entry("Boss@Example.ORG") == "boss@example.org");
    CHECK(qv::relaymailfrom_entry("@Trusted.org") == "@trusted.org");
    for (const char* bad : {"", "10.1.1", "300.1.1.1", "10..1.", "1.2.3.4.5", "a.b.c.", "10.1.1.5:x y", "10.1.1.5:a:b",
                            "1.2.3.4.", "::1"}) {
        INFO(bad);
        CHECK_THROWS_AS(qv::relayclients_entry(bad), qv::Error);
    }
    for (const char* bad : {"", ".", "exa mple.com", "-bad-.com", "a..b"}) {
        INFO(bad);
        CHECK_THROWS_AS(qv::relaydomains_entry(bad), qv::Error);
    }
    for (const char* bad : {"", "@", "user@", "no-at-sign", "a b@example.com"}) {
        INFO(bad);
        CHECK_THROWS_AS(qv::relaymailfrom_entry(bad), qv::Error);
    }
}

TEST_CASE("tcp.smtp addresses and rule lines", "[relay]") {
    CHECK(qv::tcprules_address("127.0.0.1") == "127.0.0.1");
    CHECK(qv::tcprules_address("10.1.") == "10.1.");
    CHECK(qv::tcprules_address("10.1.1.1-50") == "10.1.1.1-50");
    CHECK(qv::tcprules_address("=MX.Example.com") == "=mx.example.com");
    CHECK(qv::tcprules_address("=.example.com") == "=.example.com");
    CHECK(qv::tcprules_address("joe@10.1.1.5") == "joe@10.1.1.5");
    CHECK(qv::tcprules_address("default") == "");
    CHECK(qv::tcprules_address("") == "");
    using namespace std::string_literals;
    CHECK_THROWS_AS(qv::tcprules_address("1.2.3.4\0,x"s), qv::Error);  // no NUL-truncated check
    CHECK_THROWS_AS(qv::grant_ip("1.2.3.4\0junk"s), qv::Error);
    CHECK(qv::grant_ip("::FFFF:192.0.2.9") == "192.0.2.9");
    CHECK(qv::grant_ip("2001:db8:0::1") == "2001:db8::1");
    for (const char* bad : {"10.1.1.50-1", "10.1.1.1-300", "1.2.3", "=exa mple", ":", "a,b", "@1.2.3.4", "x",
                            "a@b@1.2.3.4", "#x@1.2.3.4", "a b@1.2.3.4", "joe@default", "joe@"}) {
        INFO(bad);
        CHECK_THROWS_AS(qv::tcprules_address(bad), qv::Error);
    }
    CHECK(qv::format_rule("10.1.", false, {{"RELAYCLIENT", ""}}) == "10.1.:allow,RELAYCLIENT=\"\"");
    CHECK(qv::format_rule("", true, {}) == ":deny");
    // a value holding a double quote is quoted with another character
    CHECK(qv::format_rule("1.2.3.4", false, {{"GREETING", "say \"hi\""}}) == "1.2.3.4:allow,GREETING='say \"hi\"'");
}

namespace {

struct RelayHome {
    TempDir dir;
    qv::Paths paths;
    RelayHome() : paths(qv::Paths::from(qv::Env({{"QMAILHOME", dir.path().string()}}))) {
        std::filesystem::create_directories(paths.controldir);
        std::filesystem::create_directories(dir / "etc");
        qvtest::write(paths.control("rcpthosts"), "example.com\n");
    }
    qv::RelayDecision test(const std::string& ip, std::optional<std::string> rcpt = std::nullopt) {
        qv::RelayQuery q;
        q.ip = ip;
        q.recipient = std::move(rcpt);
        auto store = qv::make_files_store(paths);
        return qv::decide_relay(paths, store.get(), q, std::time(nullptr));
    }
};

}  // namespace

TEST_CASE("rule edits rebuild tcp.smtp.cdb with the grants first", "[relay]") {
    RelayHome h;
    qv::add_tcp_rule(h.paths, "10.1.1.", false, {{"RELAYCLIENT", ""}}, false);
    qv::add_tcp_rule(h.paths, "6.6.6.", true, {}, false);
    CHECK(h.test("10.1.1.9").verdict == qv::RelayDecision::relay);
    CHECK(h.test("10.1.1.9").line == 1u);
    CHECK(h.test("6.6.6.6").verdict == qv::RelayDecision::denied);
    CHECK(h.test("10.1.2.9").verdict == qv::RelayDecision::refused);
    CHECK(h.test("10.1.2.9", "joe@example.com").verdict == qv::RelayDecision::local);
    CHECK(h.test("10.1.1.9", "a%b@example.com").verdict == qv::RelayDecision::rejected);
    CHECK_THROWS_MATCHES(qv::add_tcp_rule(h.paths, "10.1.1.", true, {}, false), qv::Error,
                         Catch::Predicate<qv::Error>([](const qv::Error& e) { return e.code() == qv::Exit::exists; }));
    CHECK_THROWS_MATCHES(qv::add_tcp_rule(h.paths, "1.2.3.4", false, {{"9BAD", "x"}}, false), qv::Error,
                         Catch::Predicate<qv::Error>([](const qv::Error& e) { return e.code() == qv::Exit::dataerr; }));

    // a grant of the files store: an IP-only line in open-smtp, in effect through the cdb
    auto store = qv::make_files_store(h.paths);
    qv::grant_relay(h.paths, *store, "joe@example.com", "10.1.2.9", std::time(nullptr), false);
    auto d = h.test("10.1.2.9");
    CHECK(d.verdict == qv::RelayDecision::relay);
    CHECK(d.mechanism == "relay-grant");
    std::vector<std::string> steps;
    CHECK(qv::revoke_relay(h.paths, *store, "10.1.2.9", std::nullopt, false, steps) == 1);
    CHECK(h.test("10.1.2.9").verdict == qv::RelayDecision::refused);

    qv::remove_tcp_rule(h.paths, "10.1.1.", false);
    CHECK(h.test("10.1.1.9").verdict == qv::RelayDecision::refused);
    CHECK_THROWS_MATCHES(qv::remove_tcp_rule(h.paths, "10.1.1.", false), qv::Error,
                         Catch::Predicate<qv::Error>([](const qv::Error& e) { return e.code() == qv::Exit::missing; }));
}

TEST_CASE("clear_open_smtp keeps fresh grants of the files store", "[relay]") {
    RelayHome h;
    auto store = qv::make_files_store(h.paths);
    std::time_t now = std::time(nullptr);
    qv::grant_relay(h.paths, *store, "old@example.com", "10.0.0.1", now - 3601, false);
    qv::grant_relay(h.paths, *store, "new@example.com", "10.0.0.2", now - 3599, false);
    qv::ClearOptions o;
    o.minutes = 60;
    auto r = qv::clear_open_smtp(h.paths, store.get(), o, now);
    CHECK(r.deleted == 1);
    CHECK(r.kept == 1);
    CHECK(r.rebuilt);
    auto left = store->list_grants();
    REQUIRE(left.size() == 1);
    CHECK(left[0].email == "new@example.com");
    CHECK(h.test("10.0.0.2").verdict == qv::RelayDecision::relay);
    CHECK(h.test("10.0.0.1").verdict == qv::RelayDecision::refused);
}

TEST_CASE("qmail-smtpd's policy: tcpserver's RELAYCLIENT and the checkpassword verdict decide", "[relay]") {
    RelayHome h;
    qvtest::write(h.paths.control("relayclients"), "10.9.9.:\n");
    qv::RelayPolicy policy(h.paths);
    qv::RelayQuery q;
    q.ip = "192.0.2.1";
    q.recipient = "friend@remote.example";
    q.tcpserver = qv::RelayQuery::Tcpserver{std::nullopt};
    auto now = std::time(nullptr);
    CHECK(policy.decide(nullptr, q, now).verdict == qv::RelayDecision::refused);
    q.tcpserver->relayclient = "@fix.me";
    auto d = policy.decide(nullptr, q, now);
    CHECK(d.verdict == qv::RelayDecision::relay);
    CHECK(d.append == "@fix.me");
    q.recipient = "friend%remote.example@example.com";  // a probe, whoever may relay
    CHECK(policy.decide(nullptr, q, now).verdict == qv::RelayDecision::rejected);
    q.recipient = "friend@remote.example";
    q.tcpserver->relayclient.reset();
    q.auth_user = "joe@example.com";  // the checkpassword program said so: no store needed
    q.auth_may_relay = true;
    CHECK(policy.decide(nullptr, q, now).mechanism == "smtp-auth");
    q.auth_may_relay = false;  // exit 3: NO_RELAY
    CHECK(policy.decide(nullptr, q, now).verdict == qv::RelayDecision::refused);
    q.ip = "10.9.9.4";  // the same policy, another decision: relayclients read once, still right
    CHECK(policy.decide(nullptr, q, now).mechanism == "relayclients");
    q.recipient = "joe@example.com";
    q.ip = "192.0.2.1";
    CHECK(policy.decide(nullptr, q, now).verdict == qv::RelayDecision::local);
    CHECK(policy.local_domain("example.com"));
    CHECK_FALSE(policy.local_domain("sub.example.com"));
}
