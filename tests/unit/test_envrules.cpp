#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <map>

#include "helpers.hpp"
#include "qvmail/bounce.hpp"
#include "qvmail/envrules.hpp"
#include "qvmail/error.hpp"
#include "qvmail/outgoing_ip.hpp"
#include "qvmail/paths.hpp"

using qvtest::TempDir;

TEST_CASE("wildmat: Rich Salz's patterns, anchored and case-sensitive", "[envrules]") {
    struct Case {
        const char* pattern;
        const char* text;
        bool match;
    };
    const Case cases[] = {
        {"answerme@save*", "answerme@save.example", true},
        {"answerme@save*", "answerme@saved.example", true},
        {"answerme@save*", "xanswerme@save.example", false},  // anchored at the start
        {"*@example.com", "joe@example.com", true},
        {"*@example.com", "joe@example.com.au", false},  // and at the end
        {"*@example.com", "JOE@EXAMPLE.COM", false},     // case-sensitive
        {"*", "", true},
        {"", "", true},
        {"", "x", false},
        {"?", "", false},
        {"?@x", "a@x", true},
        {"???", "ab", false},
        {"a*b*c", "aXXbYYc", true},
        {"a*b*c", "aXXbYY", false},
        {"*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
        {"**x", "abx", true},
        {"[abc]x", "bx", true},
        {"[abc]x", "dx", false},
        {"[a-c]x", "bx", true},
        {"[^a-c]x", "dx", true},
        {"[^a-c]x", "bx", false},
        {"[]]", "]", true},   // ']' first is a member
        {"[-a]", "-", true},  // so is '-'
        {"[a-]", "-", true},  // and '-' last
        {"[^]]", "x", true},
        {"[^]]", "]", false},
        {"[0-9][0-9]", "42", true},
        {"\\*", "*", true},
        {"\\*", "x", false},
        {"a\\?c", "a?c", true},
        {"a\\?c", "abc", false},
        {"[*]", "*", true},
        {"\xc3\xa9*", "\xc3\xa9t\xc3\xa9", true},  // 8-bit clean
        {"[\x80-\xff]", "\xe9", true},
        {"[a-\xff]", "\xe9", true},  // unsigned bytes (IndiMail's signed chars: no match)
    };
    for (auto& c : cases) {
        INFO("'" << c.pattern << "' on '" << c.text << "'");
        CHECK(qv::wildmat(c.pattern, c.text) == c.match);
    }
    // malformed patterns match nothing and are named
    for (const char* bad : {"abc[", "[a-", "x\\", "[^"}) {
        INFO(bad);
        CHECK(qv::wildmat_problem(bad));
        CHECK_FALSE(qv::wildmat(bad, "abc"));
    }
    CHECK_FALSE(qv::wildmat_problem("[]]"));
    // a long hostile case stays quick: at most length x length steps
    std::string text(20000, 'a');
    CHECK_FALSE(qv::wildmat("*a*a*a*a*a*a*a*a*a*a*b", text));
}

TEST_CASE("envrules lines: assignments, unsetting, escaped commas", "[envrules]") {
    using qv::PatternKind;
    auto r = qv::parse_envrule("answerme@save*:CONTROLDIR=control2,QMAILQUEUE=", PatternKind::wildmat);
    CHECK(r.pattern == "answerme@save*");
    CHECK(r.env == std::vector<qv::EnvAssignment>{{"CONTROLDIR", "control2"}, {"QMAILQUEUE", std::nullopt}});
    r = qv::parse_envrule("*:A=x\\,y, B=2,,C=a=b:c", PatternKind::wildmat);
    CHECK(r.env == std::vector<qv::EnvAssignment>{{"A", "x,y"}, {"B", "2"}, {"C", "a=b:c"}});
    r = qv::parse_envrule(":QMAILQUEUE=/bin/qmail-nullqueue", PatternKind::wildmat);  // the null sender
    CHECK(r.pattern.empty());
    r = qv::parse_envrule("a\\\\,b@x:V=1", PatternKind::wildmat);  // ',' in the pattern is a plain character
    CHECK(r.pattern == "a\\\\,b@x");
    struct Bad {
        const char* line;
        const char* why;
    };
    for (auto b : {Bad{"no-colon", "no ':'"}, Bad{"x:", "sets no variable"}, Bad{"x:NOEQUALS", "not VAR=VALUE"},
                   Bad{"x:1X=2", "not a variable name"}, Bad{"x:A B=1", "not a variable name"},
                   Bad{"x[:A=1", "not closed"}, Bad{"x\\:A=1", "lone"}}) {
        INFO(b.line);
        try {
            qv::parse_envrule(b.line, PatternKind::wildmat);
            FAIL("accepted");
        } catch (const qv::Error& e) {
            CHECK(e.code() == qv::Exit::dataerr);
            CHECK(std::string(e.what()).find(b.why) != std::string::npos);
        }
    }
    // regular expressions when QREGEX is set
    CHECK_NOTHROW(qv::parse_envrule("^(joe|ann)@:A=1", PatternKind::regex));
    CHECK_THROWS_AS(qv::parse_envrule("(:A=1", PatternKind::regex), qv::Error);
    CHECK_NOTHROW(qv::parse_envrule("(:A=1", PatternKind::wildmat));  // '(' is nothing special to wildmat

    // format writes what parse reads back
    std::vector<qv::EnvAssignment> env{{"A", "x,y\\,z"}, {"B", std::nullopt}, {"C", "  lead"}};
    std::string line = qv::format_envrule("*@example.com", env);
    CHECK(line == "*@example.com:A=x\\,y\\\\,z,B=,C=  lead");
    CHECK(qv::parse_envrule(line, PatternKind::wildmat).env ==
          std::vector<qv::EnvAssignment>{{"A", "x,y\\,z"}, {"B", std::nullopt}, {"C", "  lead"}});
    for (auto& bad : std::vector<std::pair<std::string, std::vector<qv::EnvAssignment>>>{{"a:b", {{"A", "1"}}},
                                                                                         {"#x", {{"A", "1"}}},
                                                                                         {"x", {}},
                                                                                         {"x", {{"A", "ends\\"}}},
                                                                                         {"x", {{"A", "ends "}}},
                                                                                         {"x", {{"A", "two\nlines"}}},
                                                                                         {"x", {{"bad-name", "1"}}}}) {
        INFO(bad.first);
        CHECK_THROWS_AS(qv::format_envrule(bad.first, bad.second), qv::Error);
    }
}

TEST_CASE("envrules apply: every matching line in order, the null sender, QREGEX", "[envrules]") {
    TempDir dir;
    qvtest::write(dir / "bounce.envrules",
                  "# bounces\n"
                  "answerme@save*:CONTROLDIR=control2,QMAILQUEUE=\n"
                  "*@example.com:QMAILQUEUE=/bin/one,NOTE=first\n"
                  "joe@*:NOTE=second\\,last\n"
                  "\n"
                  "<>:QMAILQUEUE=/bin/qmail-nullqueue\n"
                  "broken line\n");
    std::vector<std::string> problems;
    auto rules = qv::load_envrules(dir / "bounce.envrules", qv::PatternKind::wildmat, &problems);
    REQUIRE(rules.size() == 4);
    CHECK(rules[0].line == 2);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].find("bounce.envrules:7: no ':'") != std::string::npos);
    CHECK_THROWS_AS(qv::load_envrules(dir / "bounce.envrules", qv::PatternKind::wildmat), qv::ParseError);

    std::map<std::string, std::string> env{{"QMAILQUEUE", "/bin/qmail-queue"}, {"HOME", "/"}};
    // IndiMail's example: a new control directory, and QMAILQUEUE unset
    auto e = env;
    auto changes = qv::apply_envrules(rules, "answerme@save.example.org", qv::PatternKind::wildmat, e);
    CHECK(changes.size() == 2);
    CHECK(e == std::map<std::string, std::string>{{"CONTROLDIR", "control2"}, {"HOME", "/"}});
    // two lines match: both apply, in order, the later one winning
    e = env;
    changes = qv::apply_envrules(rules, "joe@example.com", qv::PatternKind::wildmat, e);
    CHECK(changes.size() == 3);
    CHECK(e["QMAILQUEUE"] == "/bin/one");
    CHECK(e["NOTE"] == "second,last");
    // the null sender matches '<>' (and an empty pattern), and nothing else here
    e = env;
    qv::apply_envrules(rules, "", qv::PatternKind::wildmat, e);
    CHECK(e["QMAILQUEUE"] == "/bin/qmail-nullqueue");
    e = env;
    CHECK(qv::apply_envrules(rules, "ann@example.org", qv::PatternKind::wildmat, e).empty());
    CHECK(e == env);

    // QREGEX: caseless and unanchored; a pattern that does not compile never matches
    qvtest::write(dir / "re.envrules", "EXAMPLE\\.COM:HIT=1\n^ann@:ANN=1\n(:NEVER=1\n");
    problems.clear();
    auto re = qv::load_envrules(dir / "re.envrules", qv::PatternKind::regex, &problems);
    CHECK(re.size() == 2);
    CHECK(problems.size() == 1);
    e.clear();
    qv::apply_envrules(re, "joe@example.com.au", qv::PatternKind::regex, e);
    CHECK(e == std::map<std::string, std::string>{{"HIT", "1"}});
    e.clear();
    qv::apply_envrules(re, "xann@example.org", qv::PatternKind::regex, e);
    CHECK(e.empty());
}

TEST_CASE("outgoing addresses: precedence, uniform choice, comments never chosen", "[outgoingip]") {
    TempDir dir;
    auto paths_with = [&](qv::Env::Vars extra) {
        extra["QMAILHOME"] = dir.path().string();
        return qv::Paths::from(qv::Env(extra));
    };
    qv::Paths paths = paths_with({});
    std::mt19937_64 rng(20261128);
    // nothing: the kernel chooses
    auto c = qv::choose_outgoing_ip(paths, "gmail.com", rng);
    CHECK(c.source == qv::OutgoingIpChoice::none);
    CHECK(c.ip.empty());
    // the global file; comment and blank lines, and a line that is not an address, are never chosen
    qvtest::write(dir / "control/outgoingip",
                  "# our three addresses\n192.0.2.1\n\n   \n#192.0.2.99\n192.0.2.2  \nnot-an-address\n2001:DB8::3");
    std::map<std::string, int> counts;
    const int n = 30000;
    int other_source = 0;
    for (int i = 0; i < n; ++i) {
        c = qv::choose_outgoing_ip(paths, "gmail.com", rng);
        other_source += c.source != qv::OutgoingIpChoice::global_file;
        ++counts[c.ip];
    }
    CHECK(other_source == 0);
    CHECK(counts.size() == 3);  // the last line has no newline: chosen as well
    for (auto& [ip, k] : counts) {
        INFO(ip << ": " << k);
        CHECK((ip == "192.0.2.1" || ip == "192.0.2.2" || ip == "2001:db8::3"));
        CHECK(std::abs(k - n / 3) < n / 3 / 20);  // within 5% of uniform
    }
    // the host's file wins; an empty one (only comments) falls through
    qvtest::write(dir / "control/outgoingip.gmail.com", "# nothing yet\n");
    CHECK(qv::choose_outgoing_ip(paths, "gmail.com", rng).source == qv::OutgoingIpChoice::global_file);
    qvtest::write(dir / "control/outgoingip.gmail.com", "198.51.100.7\n");
    c = qv::choose_outgoing_ip(paths, "gmail.com", rng);
    CHECK(c.source == qv::OutgoingIpChoice::host_file);
    CHECK(c.ip == "198.51.100.7");
    CHECK(c.file == dir / "control/outgoingip.gmail.com");
    CHECK(qv::choose_outgoing_ip(paths, "yahoo.com", rng).source == qv::OutgoingIpChoice::global_file);
    // OUTGOINGIP always wins
    c = qv::choose_outgoing_ip(paths_with({{"OUTGOINGIP", "203.0.113.9"}}), "gmail.com", rng);
    CHECK(c.source == qv::OutgoingIpChoice::environment);
    CHECK(c.ip == "203.0.113.9");

    CHECK(qv::outgoingip_host("Gmail.COM") == "gmail.com");
    CHECK(qv::outgoingip_host("[192.0.2.1]") == "[192.0.2.1]");
    for (const char* bad : {"", "a/b", "../x", ".hidden", "a b", "[x"}) {
        INFO(bad);
        CHECK_THROWS_AS(qv::outgoingip_host(bad), qv::Error);
    }
    CHECK(qv::is_local_address("127.0.0.1"));
    CHECK_FALSE(qv::is_local_address("192.0.2.123"));
}

TEST_CASE("bounce hooks at bounce time", "[bounce]") {
    qv::BounceReport b{"bounce/123", "Sorry, no mailbox here by that name.", "", "joe@example.com",
                       "sender@example.org"};
    CHECK(qv::bounce_processor_argv("/usr/local/bin/bp", b) ==
          std::vector<std::string>{"/usr/local/bin/bp", "bounce/123", "Sorry, no mailbox here by that name.", "",
                                   "joe@example.com", "sender@example.org"});
    auto status = [](int code) { return code << 8; };  // as wait(2) reports an exit code
    CHECK(qv::bounce_processor_verdict(status(0)) == qv::BounceVerdict::inject);
    CHECK(qv::bounce_processor_verdict(status(1)) == qv::BounceVerdict::discard);
    CHECK(qv::bounce_processor_verdict(status(2)) == qv::BounceVerdict::retry);
    CHECK(qv::bounce_processor_verdict(status(111)) == qv::BounceVerdict::retry);
    CHECK(qv::bounce_processor_verdict(SIGSEGV) == qv::BounceVerdict::retry);  // killed by a signal
    REQUIRE(WIFSIGNALED(SIGSEGV));

    std::map<std::string, std::string> env{{"BOUNCEQUEUE", "/bin/qmail-nullqueue"},
                                           {"QMAILQUEUE", "/bin/qmail-queue"},
                                           {"SPAMFILTER", "/bin/bogofilter"},
                                           {"FILTERARGS", "x"}};
    auto rules = std::vector<qv::EnvRule>{qv::parse_envrule("vip@*:QMAILQUEUE=", qv::PatternKind::wildmat)};
    // a bounce of a bounce: its original sender is the null sender, whoever the bounce goes to
    auto nul =
        std::vector<qv::EnvRule>{qv::parse_envrule("<>:QMAILQUEUE=/bin/qmail-nullqueue", qv::PatternKind::wildmat)};
    auto d = env;
    CHECK(qv::bounce_injection_environment(d, nul, "", qv::PatternKind::wildmat).size() == 1);
    CHECK(d["QMAILQUEUE"] == "/bin/qmail-nullqueue");
    auto e = env;
    CHECK(qv::bounce_injection_environment(e, rules, "someone@example.org", qv::PatternKind::wildmat).empty());
    CHECK(e == std::map<std::string, std::string>{{"BOUNCEQUEUE", "/bin/qmail-nullqueue"},
                                                  {"QMAILQUEUE", "/bin/qmail-nullqueue"}});
    e = env;
    CHECK(qv::bounce_injection_environment(e, rules, "vip@example.org", qv::PatternKind::wildmat).size() == 1);
    CHECK(e.count("QMAILQUEUE") == 0);  // a rule wins over BOUNCEQUEUE
}

TEST_CASE("where the bounce rules are, and how their patterns are read", "[bounce]") {
    TempDir dir;
    auto setting = [&](qv::Env::Vars extra) {
        extra["QMAILHOME"] = dir.path().string();
        return qv::bounce_rules_setting(qv::Paths::from(qv::Env(extra)));
    };
    auto s = setting({});
    CHECK(s.file == dir / "control/bounce.envrules");
    CHECK((s.file_source == "the default" && s.kind == qv::PatternKind::wildmat && s.kind_source == "no QREGEX"));
    CHECK(setting({{"BOUNCERULES", "other.envrules"}}).file == dir / "control/other.envrules");
    CHECK(setting({{"BOUNCERULES", "./etc/b.envrules"}}).file == dir / "etc/b.envrules");  // under QMAILHOME
    CHECK(setting({{"BOUNCERULES", "/srv/b.envrules"}}).file == "/srv/b.envrules");
    for (const char* bad : {"../x", "a/../../x", "./../x"}) {
        INFO(bad);
        try {
            setting({{"BOUNCERULES", bad}});
            FAIL("accepted");
        } catch (const qv::Error& e) {
            CHECK(e.code() == qv::Exit::config);
        }
    }
    // qmail-send's own variables count, this environment overrides them
    qvtest::write(dir / "service/qmail-send/variables/BOUNCERULES", "send.envrules\n");
    s = setting({});
    CHECK((s.file == dir / "control/send.envrules" && s.file_source == "BOUNCERULES of qmail-send"));
    s = setting({{"BOUNCERULES", "mine.envrules"}, {"QREGEX", "1"}});
    CHECK((s.file == dir / "control/mine.envrules" && s.file_source == "BOUNCERULES in this environment"));
    CHECK((s.kind == qv::PatternKind::regex && s.kind_source == "QREGEX in this environment"));

    // an empty regular expression would match every sender: refused
    qv::Paths paths = qv::Paths::from(qv::Env({{"QMAILHOME", dir.path().string()}, {"QREGEX", "1"}}));
    CHECK_THROWS_AS(qv::add_bounce_rule(paths, "", {{"A", "1"}}, false), qv::Error);
    CHECK_NOTHROW(qv::add_bounce_rule(paths, "<>", {{"A", "1"}}, false));
}

TEST_CASE("service variables in envdir form", "[bounce]") {
    TempDir dir;
    qv::Paths paths = qv::Paths::from(qv::Env({{"QMAILHOME", dir.path().string()}}));
    CHECK_FALSE(qv::read_service_variable(paths, qv::kSendService, "BOUNCEQUEUE"));
    qv::set_service_variable(paths, qv::kSendService, "BOUNCEQUEUE", "/bin/true", false);
    CHECK(qvtest::slurp(dir / "service/qmail-send/variables/BOUNCEQUEUE") == "/bin/true\n");
    CHECK(qv::read_service_variable(paths, qv::kSendService, "BOUNCEQUEUE") == "/bin/true");
    qvtest::write(dir / "service/qmail-send/variables/QREGEX", "");  // envdir: an empty file unsets
    CHECK_FALSE(qv::read_service_variable(paths, qv::kSendService, "QREGEX"));
    CHECK(qv::bounce_rules_setting(paths).kind == qv::PatternKind::wildmat);
    qvtest::write(dir / "service/qmail-send/variables/QREGEX", "1 \nignored\n");
    CHECK(qv::read_service_variable(paths, qv::kSendService, "QREGEX") == "1");
    CHECK(qv::bounce_rules_setting(paths).kind == qv::PatternKind::regex);
    CHECK(qv::bounce_rules_setting(paths).kind_source == "QREGEX of qmail-send");
    qv::unset_service_variable(paths, qv::kSendService, "BOUNCEQUEUE", false);
    CHECK_FALSE(std::filesystem::exists(dir / "service/qmail-send/variables/BOUNCEQUEUE"));
    CHECK_THROWS_AS(qv::unset_service_variable(paths, qv::kSendService, "BOUNCEQUEUE", false), qv::Error);

    // daemontools' /service/<name> is a link to the service's directory
    std::filesystem::create_directories(dir / "real/qmail-smtpd");
    std::filesystem::create_symlink(dir / "real/qmail-smtpd", dir / "service/qmail-smtpd");
    qv::set_service_variable(paths, "qmail-smtpd", "QREGEX", "1", false);
    CHECK(qvtest::slurp(dir / "real/qmail-smtpd/variables/QREGEX") == "1\n");

    CHECK_NOTHROW(qv::check_bounce_program("/bin/true"));
    for (const char* bad : {"", "bin/true", "/nonexistent/prog", "/etc", "/etc/passwd"}) {
        INFO(bad);
        CHECK_THROWS_AS(qv::check_bounce_program(bad), qv::Error);
    }
}
