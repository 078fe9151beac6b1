#include <catch2/catch.hpp>

#include <signal.h>

#include <set>

#include "helpers.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/remote.hpp"

using qv::SmtpRoutes;
using namespace std::string_literals;

namespace {

// "relay:port" of a lookup, "MX:port" for an empty relay, "none" without a route.
std::string route_of(const SmtpRoutes& r, std::string_view host, std::string_view sender = "alice@example.net") {
    auto route = r.lookup(host, sender);
    if (!route) return "none";
    return (route->relay.empty() ? "MX"s : route->relay) + ":" + std::to_string(route->port);
}

qv::Paths paths_for(const qvtest::TempDir& dir, qv::Env::Vars extra = {}) {
    extra["QMAILHOME"] = dir.path().string();
    return qv::Paths::from(qv::Env(std::move(extra)));
}

constexpr int exited(int code) {
    return code << 8;
}

}  // namespace

TEST_CASE("smtproutes: the whole name, then each suffix from a dot, then the catch-all", "[remote]") {
    SmtpRoutes r = SmtpRoutes::parse(
        "# routes\n"
        "example.com:relay.example.net\n"
        ".example.org:sub-relay.example.net:2525\n"
        "heaven.af.mil:\n"
        ".af.mil:\n"
        ":smarthost.example.net\n");
    CHECK(r.size() == 5);
    CHECK(route_of(r, "example.com") == "relay.example.net:25");
    CHECK(route_of(r, "EXAMPLE.Com") == "relay.example.net:25");  // any case
    // ".example.org" is for subdomains only: example.org itself goes to the catch-all
    CHECK(route_of(r, "mx.example.org") == "sub-relay.example.net:2525");
    CHECK(route_of(r, "a.b.example.org") == "sub-relay.example.net:2525");
    CHECK(route_of(r, "example.org") == "smarthost.example.net:25");
    // an empty relay is the MX lookup, and keeps the catch-all away
    CHECK(route_of(r, "heaven.af.mil") == "MX:25");
    CHECK(route_of(r, "x.af.mil") == "MX:25");
    CHECK(route_of(r, "af.mil") == "smarthost.example.net:25");
    CHECK(route_of(r, "anything.example") == "smarthost.example.net:25");
    // sub.example.com is not example.com
    CHECK(route_of(SmtpRoutes::parse("example.com:relay\n"), "sub.example.com") == "none");
    CHECK(route_of(SmtpRoutes::parse(""), "example.com") == "none");
}

TEST_CASE("smtproutes: ports, SMTPS, addresses, the last line for a domain", "[remote]") {
    SmtpRoutes r = SmtpRoutes::parse(
        "a.example:127.0.0.1:2525\n"
        "b.example:[::1]:25\n"
        "c.example:[IPv6:2001:DB8::1]\n"
        "d.example:[192.0.2.7]:587\n"
        "e.example:smtps.example.net:465\n"
        "f.example:first\n"
        "F.example:second   \n"
        "g.example::2526\n");
    auto a = r.lookup("a.example", "x@y");
    REQUIRE(a);
    CHECK((a->relay == "127.0.0.1" && a->literal && a->port == 2525 && !a->tls_on_connect()));
    auto b = r.lookup("b.example", "x@y");
    REQUIRE(b);
    CHECK((b->relay == "::1" && b->literal && b->port == 25));
    CHECK(route_of(r, "c.example") == "2001:db8::1:25");
    CHECK(route_of(r, "d.example") == "192.0.2.7:587");
    auto e = r.lookup("e.example", "x@y");
    REQUIRE(e);
    CHECK((!e->literal && e->tls_on_connect()));
    CHECK(route_of(r, "f.example") == "second:25");  // qmail's constmap: the last line wins
    CHECK(route_of(r, "g.example") == "MX:2526");    // the MX lookup, on another port
}

TEST_CASE("smtproutes: malformed lines are skipped and reported", "[remote]") {
    std::vector<std::string> problems;
    SmtpRoutes r = SmtpRoutes::parse(
        "no-colon-here\n"
        "a.example:relay:0\n"
        "b.example:relay:65536\n"
        "c.example:relay:25x\n"
        "d.example:::1:25\n"
        "e.example:[::1\n"
        "f.example:[not-an-ip]:25\n"
        "g.example:[::1]x\n"
        "h.example:bad/relay\n"
        "i.example:relay:\n"
        "ok.example:relay\n",
        &problems);
    CHECK(r.size() == 1);
    CHECK(route_of(r, "ok.example") == "relay:25");
    for (auto host : {"a.example", "d.example", "e.example", "h.example"}) CHECK(route_of(r, host) == "none");
    REQUIRE(problems.size() == 10);
    CHECK(problems[0] == "line 1: no ':' (domain:relay[:port]): no-colon-here");
    CHECK(problems[1].rfind("line 2: the port is not a number from 1 to 65535", 0) == 0);
    CHECK(problems[4].rfind("line 5: more than one ':' after the relay", 0) == 0);
    CHECK(problems[5].rfind("line 6: '[' without ']'", 0) == 0);
    CHECK(problems[7].rfind("line 8: text after ']'", 0) == 0);
    CHECK(problems[8].rfind("line 9: the relay is not a host name or an address", 0) == 0);
}

TEST_CASE("smtproutes: IndiMail's !@ line routes mail with an empty sender", "[remote]") {
    SmtpRoutes r = SmtpRoutes::parse("!@:bounces.example.net:2525\nexample.com:relay.example.net\n");
    CHECK(route_of(r, "example.com", "") == "bounces.example.net:2525");
    CHECK(route_of(r, "elsewhere.example", "") == "bounces.example.net:2525");
    CHECK(route_of(r, "example.com", "alice@example.net") == "relay.example.net:25");
    CHECK(route_of(r, "elsewhere.example", "alice@example.net") == "none");
    // without a !@ line, an empty sender is routed like any other
    CHECK(route_of(SmtpRoutes::parse("example.com:relay\n"), "example.com", "") == "relay:25");
}

TEST_CASE("smtproutes: SMTPROUTE replaces the file, SMTPROUTESFILE names it", "[remote]") {
    qvtest::TempDir dir;
    qvtest::write(dir / "control/smtproutes", "example.com:from-file\n");
    qvtest::write(dir / "control/other-routes", "example.com:from-other-file:26\n");
    CHECK(route_of(SmtpRoutes::load(paths_for(dir)), "example.com") == "from-file:25");
    // SMTPROUTE, as vdelivermail sets it for a handler domain:host:port
    auto env = SmtpRoutes::load(paths_for(dir, {{"SMTPROUTE", "example.com:127.0.0.1:2525"}}));
    CHECK(route_of(env, "example.com") == "127.0.0.1:2525");
    CHECK(route_of(env, "other.example") == "none");  // the file is not read at all
    CHECK(route_of(SmtpRoutes::load(paths_for(dir, {{"SMTPROUTESFILE", "other-routes"}})), "example.com") ==
          "from-other-file:26");
    CHECK(route_of(SmtpRoutes::load(paths_for(dir, {{"SMTPROUTESFILE", (dir / "control/other-routes").string()}})),
                   "example.com") == "from-other-file:26");
    std::vector<std::string> problems;
    SmtpRoutes::load(paths_for(dir, {{"SMTPROUTE", "example.com:relay:port"}}), &problems);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].rfind("SMTPROUTE: line 1: the port", 0) == 0);
    // no file: no routes
    qvtest::TempDir empty;
    CHECK(SmtpRoutes::load(paths_for(empty)).size() == 0);
}

TEST_CASE("MX records: best preference first, equal preferences shuffled", "[remote]") {
    std::set<std::string> orders;
    for (std::uint64_t seed = 0; seed < 40; ++seed) {
        std::vector<qv::MxRecord> mx{{20, "c"}, {10, "a1"}, {30, "d"}, {10, "a2"}, {20, "c2"}};
        std::mt19937_64 rng(seed);
        qv::order_mx(mx, rng);
        std::string order;
        for (auto& m : mx) order += m.name + " ";
        CHECK(mx[0].preference == 10);
        CHECK(mx[1].preference == 10);
        CHECK(mx[4].name == "d");
        orders.insert(order);
    }
    CHECK(orders.size() == 4);  // a1/a2 either way, c/c2 either way
}

TEST_CASE("the reports are written as qmail-remote writes them", "[remote]") {
    qv::RemoteResult r;
    r.recipients = {{'h', "127.0.0.1 does not like recipient.\nRemote host said: 550 no\n"}, {'r', ""}};
    r.code = 'K';
    r.text = "127.0.0.1 accepted message.\nRemote host said: 250 ok\n";
    CHECK(
        qv::format_reports(r) ==
        "h127.0.0.1 does not like recipient.\nRemote host said: 550 no\n\0r\0K127.0.0.1 accepted message.\nRemote host said: 250 ok\n\0"s);
    CHECK(
        qv::format_reports(qv::remote_failure('Z', "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)")) ==
        "ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n\0"s);
}

TEST_CASE("what deliver_remote refuses before connecting", "[remote]") {
    qvtest::TempDir dir;
    qv::Paths paths = paths_for(dir);
    qv::RemoteConfig config;
    qv::RemoteMessage m{"example.com", "alice@example.net\r\nRCPT TO:<x@y>", "", std::nullopt, {"joe@example.com"}};
    auto r = qv::deliver_remote(paths, config, m, -1);
    CHECK(r.code == 'D');
    CHECK(r.recipients.empty());
    m.sender = "alice@example.net";
    m.recipients.clear();
    CHECK(qv::deliver_remote(paths, config, m, -1).text == "I (qmail-remote) was invoked improperly. (#5.3.5)\n");
    // an address literal that is not an address
    m.host = "[not.an.address]";
    m.recipients = {"joe@[not.an.address]"};
    CHECK(qv::format_reports(qv::deliver_remote(paths, config, m, -1)) ==
          "DSorry, I couldn't find any host named [not.an.address]. (#5.1.2)\n\0"s);
}

TEST_CASE("qmail-rspawn's folding: how the child ended", "[remote]") {
    auto f = qv::fold_remote_output("r\0Kok\n\0"s, SIGKILL);
    CHECK((f.code == 'Z' && f.text == "qmail-remote crashed.\n"));
    f = qv::fold_remote_output("", exited(111));
    CHECK((f.code == 'Z' && f.text == "Unable to run qmail-remote.\n"));
    f = qv::fold_remote_output("", exited(100));
    CHECK((f.code == 'D' && f.text == "Unable to run qmail-remote.\n"));
    f = qv::fold_remote_output("", exited(0));
    CHECK((f.code == 'Z' && f.text == "qmail-remote produced no output.\n"));
}

TEST_CASE("qmail-rspawn's folding: one recipient", "[remote]") {
    // accepted: the message report's text
    auto f = qv::fold_remote_output("r\0K127.0.0.1 accepted message.\nRemote host said: 250 ok\n\0"s, exited(0));
    CHECK(f.code == 'K');
    CHECK(f.text == "127.0.0.1 accepted message.\nRemote host said: 250 ok\n");
    // refused for good: the recipient's text, then the message's ("Giving up")
    f = qv::fold_remote_output(
        "h1.2.3.4 does not like recipient.\nRemote host said: 550 no\n\0DGiving up on 1.2.3.4.\n\0"s, exited(0));
    CHECK(f.code == 'D');
    CHECK(f.text == "1.2.3.4 does not like recipient.\nRemote host said: 550 no\nGiving up on 1.2.3.4.\n");
    // refused for now: 's' makes the "Giving up" D a Z
    f = qv::fold_remote_output(
        "s1.2.3.4 does not like recipient.\nRemote host said: 451 later\n\0DGiving up on 1.2.3.4.\n\0"s, exited(0));
    CHECK(f.code == 'Z');
    CHECK(f.text == "1.2.3.4 does not like recipient.\nRemote host said: 451 later\nGiving up on 1.2.3.4.\n");
    // accepted, then the message failed
    f = qv::fold_remote_output("r\0Z1.2.3.4 failed after I sent the message.\nRemote host said: 451 full\n\0"s,
                               exited(0));
    CHECK((f.code == 'Z' && f.text == "1.2.3.4 failed after I sent the message.\nRemote host said: 451 full\n"));
    // a failure before any recipient
    f = qv::fold_remote_output("ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n\0"s, exited(0));
    CHECK((f.code == 'Z' && f.text == "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"));
    f = qv::fold_remote_output("DSorry, I couldn't find any host named x. (#5.1.2)\n\0"s, exited(0));
    CHECK((f.code == 'D' && f.text == "Sorry, I couldn't find any host named x. (#5.1.2)\n"));
}

TEST_CASE("qmail-rspawn's folding: odd output", "[remote]") {
    // several recipients (qmail-send passes one): the first recipient's verdict, and only its text when
    // the message did better
    auto f = qv::fold_remote_output("hno\n\0r\0Kyes\n\0"s, exited(0));
    CHECK((f.code == 'D' && f.text == "no\n"));
    f = qv::fold_remote_output("r\0hno\n\0Kyes\n\0"s, exited(0));
    CHECK((f.code == 'K' && f.text.empty()));  // qmail-rspawn's words: the first report's text (empty), nothing more
    // no message report at all: D
    f = qv::fold_remote_output("r\0"s, exited(0));
    CHECK((f.code == 'D' && f.text.empty()));
    // no NUL: no report found, and no text
    f = qv::fold_remote_output("Kaccepted", exited(0));
    CHECK((f.code == 'D' && f.text.empty()));
    // a message report without its NUL after a recipient's
    f = qv::fold_remote_output("r\0Kyes"s, exited(0));
    CHECK((f.code == 'D' && f.text == "yes"));
}
