#include <catch2/catch.hpp>

#include "helpers.hpp"
#include "qvmail/error.hpp"
#include "qvmail/filter.hpp"
#include "qvmail/message.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/regex.hpp"

using qvtest::TempDir;

namespace {

// Several values of one header (Received), an encoded word with a fold inside Subject, an address
// list over two lines, numbers, and a MIME part with a header of its own.
const char* kMessage =
    "Return-Path: <boss@example.com>\r\n"
    "Received: from a.example by b.example\r\n"
    "Received: from c.example by d.example\r\n"
    "From: =?UTF-8?Q?B=C3=B6ss?= <boss@example.com>\r\n"
    "To: team@example.com,\r\n"
    "  \"Joe Example\" <JOE@Example.com>\r\n"
    "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= from\r\n"
    "\tthe team\r\n"
    "X-Spam-Rating: 7\r\n"
    "X-Bogosity: 0.35\r\n"
    "X-Loop: =?ISO-8859-1?Q?caf=E9?= =?ISO-8859-1?Q?_au_lait?=\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--b1\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "hello\r\n"
    "--b1\r\n"
    "Content-Type: application/zip; name=\"invoice.zip\"\r\n"
    "\r\n"
    "UEsDB\r\n"
    "--b1--\r\n";

const qv::HeaderList& H = qv::HeaderList::builtin();

int hdr(const char* name) {
    auto n = H.number(name);
    REQUIRE(n);
    return *n;
}

qv::FilterRule rule(const char* header, qv::Comparison c, std::string keyword, std::string folder = "Spam") {
    qv::FilterRule r;
    r.number = 1;
    r.name = "t";
    r.header = header ? hdr(header) : -1;
    r.comparison = static_cast<int>(c);
    r.keyword = std::move(keyword);
    r.folder = std::move(folder);
    r.action = "0";
    return r;
}

qv::RuleTrace::Outcome outcome(const qv::FilterRule& r, const std::string& raw = kMessage,
                               std::vector<std::string> mine = {"joe@example.com"}) {
    qv::FilterEngine e({qv::FilterSet{qv::FilterStage::user, "joe@example.com", {r}, {}}}, H);
    auto d = e.evaluate(qv::parse_message(raw), mine, true);
    REQUIRE(d.trace.size() == 1);
    CHECK(d.matched == (d.trace[0].outcome == qv::RuleTrace::matched));
    return d.trace[0].outcome;
}

}  // namespace

TEST_CASE("every comparison over several values, encoded words, folds and absent headers", "[filter]") {
    using C = qv::Comparison;
    using O = qv::RuleTrace::Outcome;
    struct Case {
        const char* header;
        C cmp;
        const char* keyword;
        O expect;
    };
    const Case cases[] = {
        // Equals is true equality, without regard to case, over the decoded and unfolded value
        {"Subject", C::equals, "GRÜSSE from the team", O::no_match},  // ß is not SS
        {"Subject", C::equals, "GRÜße FROM the TEAM", O::matched},
        {"Subject", C::equals, "grüße", O::no_match},  // a prefix is not equal (IndiMail: a match)
        {"Received", C::equals, "from c.example by d.example", O::matched},  // the second value
        {"X-Loop", C::equals, "café au lait", O::matched},  // two encoded words, the blank between them gone
        {"X-Mailer", C::equals, "x", O::absent},
        // Contains
        {"Received", C::contains, "C.EXAMPLE", O::matched},
        {"Received", C::contains, "x.example", O::no_match},
        {"Subject", C::contains, "from the", O::matched},              // across the fold
        {"From", C::contains, "böss", O::matched},                     // decoded from Q
        {"Content-Type", C::contains, "application/zip", O::matched},  // a MIME part's header
        {"X-Mailer", C::contains, "x", O::absent},
        // Does not contain: true when no value contains the keyword; an absent header never matches
        {"Received", C::not_contains, "c.example", O::no_match},
        {"Received", C::not_contains, "z.example", O::matched},
        {"X-Mailer", C::not_contains, "x", O::absent},
        // Starts with, Ends with (a true suffix: IndiMail takes any occurrence)
        {"Subject", C::starts_with, "grüße", O::matched},
        {"Subject", C::starts_with, "from", O::no_match},
        {"Subject", C::ends_with, "THE TEAM", O::matched},
        {"Subject", C::ends_with, "from", O::no_match},
        {"Received", C::ends_with, "d.example", O::matched},
        {"X-Mailer", C::ends_with, "x", O::absent},
        // Numerical expressions
        {"X-Spam-Rating", C::numeric, "%p > 5", O::matched},
        {"X-Spam-Rating", C::numeric, "%p > 7", O::no_match},
        {"X-Spam-Rating", C::numeric, "%p >= 7 && %p < 10", O::matched},
        {"X-Bogosity", C::numeric, "%p > 0.3", O::matched},
        {"X-Bogosity", C::numeric, "%p * 100 < 30", O::no_match},
        {"Subject", C::numeric, "%p > 1", O::failed},              // not a number: no match
        {"X-Spam-Rating", C::numeric, "1 / (%p - 7)", O::failed},  // division by zero: no match
        {"X-Mailer", C::numeric, "%p > 1", O::absent},
        // Regular expressions: caseless, unanchored, UTF-8
        {"Subject", C::regex, "^GRÜ.+team$", O::matched},
        {"Received", C::regex, "c\\.example", O::matched},
        {"Received", C::regex, "^by", O::no_match},
        {"X-Mailer", C::regex, ".", O::absent},
    };
    for (auto& c : cases) {
        INFO(c.header << " " << qv::comparison_name(c.cmp) << " '" << c.keyword << "'");
        CHECK(outcome(rule(c.header, c.cmp, c.keyword)) == c.expect);
    }
}

TEST_CASE("My id not in To, CC, Bcc", "[filter]") {
    auto r = rule(nullptr, qv::Comparison::not_my_id, "");
    CHECK(outcome(r, kMessage, {"joe@example.com"}) == qv::RuleTrace::no_match);  // "<JOE@Example.com>" in To
    CHECK(outcome(r, kMessage, {"zed@example.com"}) == qv::RuleTrace::matched);
    CHECK(outcome(r, "Subject: no recipients\n\nbody\n") == qv::RuleTrace::matched);
    CHECK(outcome(r, "To: undisclosed-recipients:;\nBcc: joe@example.com\n\n") == qv::RuleTrace::no_match);
    CHECK(outcome(r, "Cc: Joe (not joe@example.com) <other@example.com>\n\n") == qv::RuleTrace::matched);
}

TEST_CASE("a catastrophic regular expression stops at the limits and does not match", "[filter][regex]") {
    qv::Regex re("(a+)+$");
    std::string line(30000, 'a');
    line += 'b';
    CHECK(re.match(line) == qv::Regex::Result::limit_hit);
    CHECK(re.match("aaa") == qv::Regex::Result::match);
    // in a rule it is a failure (no match), and the next rule still runs
    std::string msg = "Subject: " + line + "\n\n";
    auto bad = rule("Subject", qv::Comparison::regex, "(a+)+$");
    auto next = rule("Subject", qv::Comparison::contains, "aab", "Next");
    next.number = 2;
    qv::FilterEngine e({qv::FilterSet{qv::FilterStage::user, "joe@example.com", {bad, next}, {}}}, H);
    auto d = e.evaluate(qv::parse_message(msg), {}, true);
    REQUIRE(d.trace.size() == 2);
    CHECK(d.trace[0].outcome == qv::RuleTrace::failed);
    CHECK(d.trace[0].detail.find("limit hit") != std::string::npos);
    CHECK(d.matched);
    CHECK(d.folder == "Next");
}

TEST_CASE("regular expressions: caseless UTF-8, invalid input bytes, bad patterns", "[regex]") {
    CHECK(qv::Regex("über").match("ÜBER alles") == qv::Regex::Result::match);
    CHECK(qv::Regex("^x").match("\xff\xfe x") == qv::Regex::Result::no_match);
    CHECK(qv::Regex("x").match("\xff\xfe x") == qv::Regex::Result::match);
    CHECK(qv::Regex("A", false).match("a") == qv::Regex::Result::no_match);
    try {
        qv::Regex("a(b");
        FAIL("no error");
    } catch (const qv::Error& e) {
        CHECK(e.code() == qv::Exit::dataerr);
        CHECK(std::string(e.what()).find("offset 3") != std::string::npos);
    }
    CHECK_THROWS_AS(qv::Regex("\\C"), qv::Error);  // would break UTF-8 matching
}

TEST_CASE("the first rule that matches decides: prefilt, the user, postfilt", "[filter]") {
    auto pre = rule("Subject", qv::Comparison::contains, "nothing-here", "Pre");
    auto own1 = rule("Received", qv::Comparison::contains, "a.example", "Own");
    auto own2 = rule("Subject", qv::Comparison::contains, "team", "Own2");
    own2.number = 2;
    auto post = rule("Subject", qv::Comparison::contains, "team", "/nodeliver");
    post.action = "3&audit@example.org";
    std::vector<qv::FilterSet> sets{{qv::FilterStage::prefilt, "prefilt@example.com", {pre}, {}},
                                    {qv::FilterStage::user, "joe@example.com", {own1, own2}, {}},
                                    {qv::FilterStage::postfilt, "postfilt@example.com", {post}, {}}};
    auto m = qv::parse_message(kMessage);
    {
        qv::FilterEngine e(sets, H);
        auto d = e.evaluate(m, {"joe@example.com"}, true);
        CHECK(d.matched);
        CHECK(d.address == "joe@example.com");
        CHECK(d.rule.number == 1);
        CHECK(d.delivery == qv::FilterDecision::Delivery::folder);
        CHECK(d.folder == "Own");
        CHECK(d.trace.size() == 2);  // pre, own1: nothing after the match is tried
        CHECK(qv::describe_decision(d) == "filter 1 't' of joe@example.com matched: deliver to folder Own");
    }
    sets[1].rules.clear();  // postfilt applies without rules of the user's own
    {
        qv::FilterEngine e(sets, H);
        auto d = e.evaluate(m, {"joe@example.com"});
        CHECK(d.matched);
        CHECK(d.stage == qv::FilterStage::postfilt);
        CHECK(d.delivery == qv::FilterDecision::Delivery::discard);
        CHECK(d.action.bounce);
        CHECK(d.action.forward == qv::BounceAction::address);
        CHECK(d.action.target == "audit@example.org");
        CHECK(qv::describe_decision(d) ==
              "filter 1 't' of postfilt@example.com matched: deliver nowhere (/NoDeliver), then forward a copy to "
              "audit@example.org, then bounce the message to its sender");
    }
    sets[2].skipped = "Maildir/nopostfilt exists";
    {
        qv::FilterEngine e(sets, H);
        auto d = e.evaluate(m, {"joe@example.com"});
        CHECK_FALSE(d.matched);
        CHECK(d.delivery == qv::FilterDecision::Delivery::inbox);
        REQUIRE(d.notes.size() == 1);
        CHECK(d.notes[0] == "postfilt@example.com: not applied, Maildir/nopostfilt exists");
        CHECK(qv::describe_decision(d) == "no rule matched: deliver to Inbox");
    }
}

TEST_CASE("rules the engine cannot apply are skipped, never fatal", "[filter]") {
    auto unknown_header = rule("Subject", qv::Comparison::contains, "x");
    unknown_header.header = 99;
    auto old_numbering = rule("Subject", qv::Comparison::contains, "x");
    old_numbering.comparison = 8;  // RegExp before IndiMail's 2023 renumbering
    auto bad_regex = rule("Subject", qv::Comparison::regex, "(");
    auto bad_action = rule("Subject", qv::Comparison::contains, "x");
    bad_action.action = "7";
    auto escaping_folder = rule("Subject", qv::Comparison::contains, "x", "../../etc");  // never a path outside
    auto dot_folder = rule("Subject", qv::Comparison::contains, "x", ".Spam");
    for (auto& r : {unknown_header, old_numbering, bad_regex, bad_action, escaping_folder, dot_folder}) {
        INFO(r.header << " " << r.comparison << " " << r.keyword << " " << r.action);
        CHECK(outcome(r) == qv::RuleTrace::skipped);
    }
}

TEST_CASE("the header list: IndiMail's numbers are frozen, sites may only append", "[filter]") {
    // IndiMail's headerlist (indimail-x/headerlist): these numbers are stored in vfilter rows.
    const char* v1[] = {"Return-Path",
                        "From",
                        "Subject",
                        "To",
                        "Cc",
                        "Bcc",
                        "Reply-To",
                        "Date",
                        "Sender",
                        "User-Agent",
                        "Message-Id",
                        "MIME-Version",
                        "Content-Type",
                        "Content-Transfer-Encoding",
                        "Precedence",
                        "Organization",
                        "Errors-To",
                        "List-Id",
                        "Importance",
                        "Mailing-List",
                        "X-Sender",
                        "X-Mailing-List",
                        "X-ML-Name",
                        "X-List",
                        "X-Loop",
                        "X-BeenThere",
                        "X-Sequence",
                        "X-Mailer",
                        "X-QHPSI",
                        "X-Priority",
                        "X-Spam-Status",
                        "X-Spam-Rating",
                        "X-Bogosity",
                        "Received",
                        "X-Quarantine",
                        "Domainkey-Signature",
                        "DKIM-Signature",
                        "DKIM-Status",
                        "Domainkey-Status",
                        "X-Forwarded-To",
                        "X-Forwarded-For",
                        "Return-Receipt-To",
                        "Dispostion-Notification-To",
                        "Disposition-Notification-Options",
                        "Original-Recipient",
                        "X-BitDefender-Spam",
                        "X-DSPAM-Result"};
    REQUIRE(H.size() >= 47);
    for (int i = 0; i < 47; ++i) {
        INFO(i << " " << v1[i]);
        CHECK(H.number(v1[i]) == i);
    }
    CHECK(H.name(42) == "Disposition-Notification-To");  // shown spelt right, IndiMail's spelling accepted
    CHECK(H.number("subject") == 2);
    CHECK(H.number("X-Unknown") == std::nullopt);
    CHECK(H.name(-1).empty());

    std::string indimail_file = "# IndiMail's own file\n";
    for (auto n : v1) indimail_file += std::string(n) + "\n";
    auto site =
        qv::HeaderList::extend(H, indimail_file + "\nX-Spam-Score   # ours\nAuto-Submitted\n", "etc/headerlist");
    CHECK(site.number("x-spam-score") == 47);
    CHECK(site.number("Auto-Submitted") == 48);
    CHECK(site.source() == "etc/headerlist");

    auto aliases = qv::HeaderList::extend(H, "Return-Path Return-path-alias\n", "f");  // more spellings
    CHECK(aliases.number("return-path-alias") == 0);
    CHECK_THROWS_AS(qv::HeaderList::extend(H, "Return-Path Subject\n", "f"), qv::Error);  // header 2's name
    std::string swapped = "Return-Path\nSubject\nFrom\n";
    try {
        qv::HeaderList::extend(H, swapped, "etc/headerlist");
        FAIL("a renumbering list was taken");
    } catch (const qv::Error& e) {
        CHECK(e.code() == qv::Exit::config);
        CHECK(std::string(e.what()).starts_with("etc/headerlist:2: header 1 is 'Subject' here but 'From'"));
    }
    CHECK_THROWS_AS(qv::HeaderList::extend(H, indimail_file + "subject\n", "f"), qv::Error);  // a second number
    // fewer lines than the shipped list: the rest stays as shipped
    CHECK(qv::HeaderList::extend(H, "Return-Path\nFrom\n", "f").size() == H.size());

    TempDir dir;
    qvtest::write(dir / "etc/headerlist", indimail_file + "X-Custom\n");
    qv::Env env({{"QMAILHOME", dir.path().string()}});
    CHECK(qv::HeaderList::load(qv::Paths::from(env)).number("X-Custom") == 47);
}

TEST_CASE("comparison numbers and names", "[filter]") {
    CHECK(qv::parse_comparison("0") == qv::Comparison::equals);
    CHECK(qv::parse_comparison("7") == qv::Comparison::regex);
    CHECK(qv::parse_comparison("8") == std::nullopt);
    CHECK(qv::parse_comparison("-1") == std::nullopt);
    CHECK(qv::parse_comparison("Does not contain") == qv::Comparison::not_contains);
    CHECK(qv::parse_comparison("does NOT contain") == qv::Comparison::not_contains);
    CHECK(qv::parse_comparison("My id not in To, CC, Bcc") == qv::Comparison::not_my_id);
    CHECK(qv::parse_comparison("My id not in To/CC/Bcc") == qv::Comparison::not_my_id);
    CHECK(qv::parse_comparison("Numerical Logical Expression") == qv::Comparison::numeric);
    CHECK(qv::parse_comparison("RegExp") == qv::Comparison::regex);
    CHECK(qv::parse_comparison("ends-with") == qv::Comparison::ends_with);
    CHECK(qv::parse_comparison("Sender Not in Address Book") == std::nullopt);  // gone in 2023
    for (int i = 0; i < qv::kComparisonCount; ++i) {
        auto c = static_cast<qv::Comparison>(i);
        CHECK(qv::parse_comparison(qv::comparison_name(c)) == c);
        CHECK(qv::parse_comparison(qv::comparison_slug(c)) == c);
    }
}

TEST_CASE("vcfilter's checks on a rule", "[filter]") {
    auto ok = [](qv::FilterRule r) {
        qv::check_filter_rule(r, H);
        return r;
    };
    auto bad = [](qv::FilterRule r, const std::string& what) {
        INFO(what);
        try {
            qv::check_filter_rule(r, H);
            FAIL("accepted: " << what);
        } catch (const qv::Error& e) {
            CHECK(e.code() == qv::Exit::dataerr);
            CHECK(std::string(e.what()).find(what) != std::string::npos);
        }
    };
    auto r = rule("Subject", qv::Comparison::contains, "it's \"quoted\" \\ here");
    CHECK(ok(r).keyword == r.keyword);
    r.folder = "inbox";
    CHECK(ok(r).folder == "Inbox");
    r.folder = "/NODELIVER";
    CHECK(ok(r).folder == "/NoDeliver");
    r.folder = "Lists.qmail";
    CHECK(ok(r).folder == "Lists.qmail");
    auto five = rule("Subject", qv::Comparison::not_my_id, "ignored");
    CHECK(ok(five).header == -1);
    CHECK(ok(five).keyword.empty());
    for (const char* action : {"0", "1", "2&fwd@example.org", "3&fwd@example.org", "2|/usr/bin/logger -t x", "3|cat"}) {
        r = rule("Subject", qv::Comparison::contains, "x");
        r.action = action;
        CHECK(ok(r).action == action);
    }

    auto with = [&](auto change) {
        auto x = rule("Subject", qv::Comparison::contains, "x");
        change(x);
        return x;
    };
    bad(with([](auto& x) { x.name = ""; }), "-t: a filter needs a name");
    bad(with([](auto& x) { x.name = std::string(33, 'n'); }), "longer than 32");
    bad(with([](auto& x) { x.name = "tab\there"; }), "control characters");
    const std::string n = std::to_string(H.size());
    bad(with([](auto& x) { x.header = H.size(); }),
        "-h " + n + ": not in the header list (0-" + std::to_string(H.size() - 1) + ")");
    bad(with([](auto& x) { x.header = -2; }), "-h -2: not in the header list");
    bad(with([](auto& x) { x.keyword = "caf\xe9"; }), "-k 'caf\\xe9': not UTF-8 text");  // Latin-1
    bad(with([](auto& x) { x.name = "\xff"; }), "not UTF-8 text");
    bad(with([](auto& x) { x.folder = "Caf\xe9"; }), "not UTF-8 text");
    bad(with([](auto& x) { x.comparison = 8; }), "-c 8: not a comparison");
    bad(with([](auto& x) { x.keyword = ""; }), "needs a keyword");
    bad(with([](auto& x) { x.keyword = std::string(65, 'k'); }), "longer than 64");
    CHECK_NOTHROW(ok(with([](auto& x) {  // 64 characters of two bytes each fit
        x.keyword.clear();
        for (int i = 0; i < 64; ++i) x.keyword += "é";
    })));
    bad(with([](auto& x) { x.keyword = "trailing "; }), "ends with a blank");
    bad(with([](auto& x) {
            x.comparison = 6;
            x.keyword = "%p >";
        }),
        "expected an operand");
    bad(with([](auto& x) {
            x.comparison = 6;
            x.keyword = "5 > 3";
        }),
        "does not use %p");
    bad(with([](auto& x) {
            x.comparison = 7;
            x.keyword = "[a-";
        }),
        "invalid regular expression");
    bad(with([](auto& x) { x.folder = ""; }), "needs a folder");
    bad(with([](auto& x) { x.folder = ".Spam"; }), "cannot start with '.'");
    bad(with([](auto& x) { x.folder = "a/b"; }), "cannot contain '/'");
    bad(with([](auto& x) { x.folder = "a..b"; }), "no empty level");
    bad(with([](auto& x) { x.folder = std::string(157, 'f'); }), "longer than 156");
    for (const char* action :
         {"", "4", "01", "2", "2&", "2x", "2&nobody", "2&a b@example.org", "2|", "2| ", "2&x@bad_domain..com", "1 "}) {
        bad(with([&](auto& x) { x.action = action; }), "-b");
    }
    CHECK(qv::reserved_filter_local("postmaster") == "postmaster");
    CHECK(qv::reserved_filter_local("register-nonspam") == "register-nonspam");
    CHECK(qv::reserved_filter_local("spamreport") == std::nullopt);  // IndiMail's prefix test refuses it
    CHECK(qv::reserved_filter_local("prefilt") == std::nullopt);
}

TEST_CASE("the rules file of the files store", "[filter]") {
    auto a = rule("Subject", qv::Comparison::contains, "it's \"quoted\" \\ here");
    a.name = "name with 'quotes' and \\ backslash";
    auto b = rule(nullptr, qv::Comparison::not_my_id, "");
    b.number = 0;
    b.action = "3|/usr/bin/prog \"arg\"";
    std::string text = qv::format_filter_file({b, a});
    auto back = qv::parse_filter_file(text, "vfilter/joe");
    REQUIRE(back.size() == 2);
    CHECK(back[0].number == 0);
    CHECK(back[0].header == -1);
    CHECK(back[0].action == b.action);
    CHECK(back[1].name == a.name);
    CHECK(back[1].keyword == a.keyword);
    CHECK(back[1].folder == "Spam");
    // sorted by number whatever the order of the lines
    auto sorted = qv::parse_filter_file("3\tc\t2\t1\tz\tInbox\t0\n1\ta\t2\t1\ty\tInbox\t0\n", "f");
    CHECK(sorted[0].number == 1);
    CHECK(sorted[1].number == 3);
    struct Bad {
        const char* text;
        const char* why;
    };
    for (auto& x : {Bad{"1\ta\t2\t1\tk\tInbox\n", "expected 7"}, Bad{"x\ta\t2\t1\tk\tInbox\t0\n", "filter number 'x'"},
                    Bad{"1\ta\t-2\t1\tk\tInbox\t0\n", "header number '-2'"},
                    Bad{"1\ta\t2\t1\tk\tInbox\t0\n1\tb\t3\t1\tk\tInbox\t0\n", "appears twice"}}) {
        try {
            qv::parse_filter_file(std::string("# comment\n") + x.text, "vfilter/joe");
            FAIL(x.text);
        } catch (const qv::ParseError& e) {
            CHECK(e.file() == "vfilter/joe");
            CHECK(e.line() >= 2);
            CHECK(e.reason().find(x.why) != std::string::npos);
        }
    }
}
