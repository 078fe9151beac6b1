// Benchmark helper for bench/filter.sh: the mail filter engine in one process. Makes RULES rules (every
// comparison, keywords that no message holds, so that every rule is tried) and MESSAGES varied messages
// (2-20 KB, several Received lines, encoded words, MIME parts), then times reading each message and
// applying the rules to it, as vfilter does at delivery (the rules compiled once).
//   qv_filter_bench [MESSAGES] [RULES] [OUTDIR]
// With OUTDIR it also writes the rules (rules.tsv: name, header, comparison, keyword, folder), the same
// rules as a procmailrc, and the first 1000 messages (msg/NNNN.eml), for the per-process comparison.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "qvmail/filter.hpp"
#include "qvmail/message.hpp"
#include "qvmail/regex.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double us_since(Clock::time_point t) {
    return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

double quantile(std::vector<double> v, double f) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(f * static_cast<double>(v.size())))];
}

double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / static_cast<double>(v.size());
}

const char* kWords[] = {"meeting", "report",   "invoice", "project", "update", "lunch",  "quarterly", "numbers",
                        "release", "schedule", "review",  "draft",   "budget", "travel", "photos",    "weekend",
                        "Grüße",   "café",     "résumé",  "naïve",   "déjà",   "über",   "straße",    "smørrebrød"};

struct Generator {
    std::mt19937 rng{20261128};
    std::size_t pick(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); }
    std::string word() { return kWords[pick(std::size(kWords))]; }
    std::string words(int n) {
        std::string s;
        for (int i = 0; i < n; ++i) s += (i ? " " : "") + word();
        return s;
    }
    std::string host() {
        return "mx" + std::to_string(pick(90) + 10) + ".host" + std::to_string(pick(500)) + ".example";
    }

    std::string base64(const std::string& in) {
        static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        std::string out;
        std::size_t i = 0;
        for (; i + 2 < in.size(); i += 3) {
            unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                         static_cast<unsigned char>(in[i + 2]);
            for (int k = 18; k >= 0; k -= 6) out += t[(v >> k) & 63];
        }
        if (i < in.size()) {
            unsigned v = static_cast<unsigned char>(in[i]) << 16;
            if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
            out += t[(v >> 18) & 63];
            out += t[(v >> 12) & 63];
            out += i + 1 < in.size() ? t[(v >> 6) & 63] : '=';
            out += '=';
        }
        return out;
    }

    std::string subject() {
        std::string s = words(3 + static_cast<int>(pick(6)));
        switch (pick(3)) {
            case 0:
                return "=?UTF-8?B?" + base64(s) + "?=";
            case 1: {
                std::string q = "=?UTF-8?Q?";
                for (unsigned char c : s) {
                    char buf[4];
                    if (c == ' ')
                        q += '_';
                    else if (c >= 0x80 || c == '=' || c == '?' || c == '_') {
                        std::snprintf(buf, sizeof buf, "=%02X", c);
                        q += buf;
                    } else {
                        q += static_cast<char>(c);
                    }
                }
                return q + "?=";
            }
            default:
                return s.substr(0, 40) + "\r\n " + s.substr(std::min<std::size_t>(40, s.size()));
        }
    }

    std::string message(std::size_t target) {
        std::string m;
        m += "Return-Path: <sender" + std::to_string(pick(1000)) + "@" + host() + ">\r\n";
        m += "Delivered-To: joe@example.com\r\n";
        for (std::size_t i = 0, n = 3 + pick(6); i < n; ++i)
            m += "Received: from " + host() + " (" + host() + " [192.0.2." + std::to_string(pick(250)) + "])\r\n\tby " +
                 host() + " with ESMTPS id " + std::to_string(rng()) + "\r\n\tfor <joe@example.com>; " +
                 "Sat, 28 Nov 2026 07:0" + std::to_string(pick(10)) + ":00 +0000\r\n";
        m += "DKIM-Signature: v=1; a=rsa-sha256; d=" + host() +
             "; s=sel; h=from:to:subject:date;\r\n\tb=" + std::string(200 + pick(200), 'A') + "\r\n";
        m += "From: \"" + word() + " " + word() + "\" <" + word() + "@" + host() + ">\r\n";
        m += "To: Joe <joe@example.com>, team" + std::to_string(pick(9)) + "@example.com\r\n";
        if (pick(2)) m += "Cc: " + word() + "@example.org\r\n";
        m += "Subject: " + subject() + "\r\n";
        m += "Date: Sat, 28 Nov 2026 07:00:00 +0000\r\n";
        m += "Message-Id: <" + std::to_string(rng()) + "@" + host() + ">\r\n";
        m += "X-Mailer: Mailer " + std::to_string(pick(20)) + "\r\n";
        m += "X-Spam-Status: No, score=" + std::to_string(pick(50) / 10.0).substr(0, 3) + "\r\n";
        m += "X-Spam-Rating: " + std::to_string(pick(10)) + "\r\n";
        m += "MIME-Version: 1.0\r\n";
        bool multipart = pick(10) < 3;
        if (multipart)
            m += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(pick(99999)) + "\"\r\n\r\n";
        else
            m += "Content-Type: text/plain; charset=utf-8\r\n\r\n";
        std::string boundary;
        if (multipart) boundary = m.substr(m.rfind("boundary=\"") + 10, m.rfind('"') - m.rfind("boundary=\"") - 10);
        std::size_t parts = multipart ? 2 + pick(3) : 1;
        for (std::size_t p = 0; p < parts; ++p) {
            if (multipart)
                m += "--" + boundary + "\r\nContent-Type: " + (p ? "application/pdf; name=\"x.pdf\"" : "text/plain") +
                     "\r\nContent-Transfer-Encoding: base64\r\n\r\n";
            std::size_t share = target > m.size() ? (target - m.size()) / (parts - p) : 0;
            while (share > 80) {
                m += words(10) + "\r\n";
                share = share > 80 ? share - 80 : 0;
            }
        }
        if (multipart) m += "--" + boundary + "--\r\n";
        return m;
    }
};

struct RuleSpec {
    const char* header;
    qv::Comparison cmp;
    std::string keyword;
};

// RULES rules that no generated message matches, so that each one is tried on every message.
std::vector<RuleSpec> make_rules(int n) {
    using C = qv::Comparison;
    const char* headers[] = {"Subject",      "From",       "To", "Received", "X-Mailer",      "Return-Path",
                             "Content-Type", "Message-Id", "Cc", "List-Id",  "X-Spam-Status", "DKIM-Signature"};
    std::vector<RuleSpec> out;
    out.push_back({nullptr, C::not_my_id, ""});  // joe is in To: no match
    for (int i = 1; i < n; ++i) {
        const char* h = headers[i % std::size(headers)];
        std::string kw = "qzx-offer-" + std::to_string(i);
        switch (i % 10) {
            case 0:
                out.push_back({h, C::equals, kw});
                break;
            case 1:
                out.push_back({h, C::starts_with, kw});
                break;
            case 2:
                out.push_back({h, C::ends_with, kw});
                break;
            case 3:
                out.push_back({"Received", C::not_contains, "by"});  // every Received line has it
                break;
            case 4:
                out.push_back({"X-Spam-Rating", C::numeric, "%p > " + std::to_string(1000 + i)});
                break;
            case 5:
                out.push_back({h, C::regex, "qzx-(offer|deal)-" + std::to_string(i) + "[0-9]*$"});
                break;
            default:
                out.push_back({h, C::contains, kw});
        }
    }
    return out;
}

std::string procmail_condition(const RuleSpec& r) {
    using C = qv::Comparison;
    std::string h = r.header ? r.header : "";
    switch (r.cmp) {
        case C::equals:
            return "* ^" + h + ": *" + r.keyword + " *$";
        case C::starts_with:
            return "* ^" + h + ": *" + r.keyword;
        case C::ends_with:
            return "* ^" + h + ":.*" + r.keyword + " *$";
        case C::not_contains:
            return "* ^" + h + ":\n* ! ^" + h + ":.*" + r.keyword;
        case C::numeric:
            return "* ^" + h + ": *[1-9][0-9][0-9][0-9][0-9]*";  // %p > 1000 and more, as near as a regex goes
        case C::regex:
            return "* ^" + h + ":.*qzx-(offer|deal)-" +
                   r.keyword.substr(r.keyword.find(')') + 2, r.keyword.find('[') - r.keyword.find(')') - 2) + "[0-9]*$";
        case C::not_my_id:
            return "* ! ^(To|Cc|Bcc):.*joe@example\\.com";
        case C::contains:
            break;
    }
    return "* ^" + h + ":.*" + r.keyword;
}

}  // namespace

int main(int argc, char** argv) {
    int messages = argc > 1 ? std::atoi(argv[1]) : 10000;
    int rule_count = argc > 2 ? std::atoi(argv[2]) : 100;
    std::filesystem::path outdir = argc > 3 ? argv[3] : "";
    const qv::HeaderList& headers = qv::HeaderList::builtin();

    auto specs = make_rules(rule_count);
    std::vector<qv::FilterRule> rules;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        qv::FilterRule r;
        r.number = static_cast<int>(i);
        r.name = "rule" + std::to_string(i);
        r.header = specs[i].header ? *headers.number(specs[i].header) : -1;
        r.comparison = static_cast<int>(specs[i].cmp);
        r.keyword = specs[i].keyword;
        r.folder = "Folder" + std::to_string(i);
        r.action = "0";
        qv::check_filter_rule(r, headers);
        rules.push_back(r);
    }
    auto t = Clock::now();
    qv::FilterEngine engine({qv::FilterSet{qv::FilterStage::user, "joe@example.com", rules, {}}}, headers);
    double compile_us = us_since(t);

    Generator gen;
    std::vector<std::string> corpus;
    std::size_t bytes = 0;
    for (int i = 0; i < messages; ++i) {
        std::size_t target = 2048 + gen.pick(18 * 1024);
        corpus.push_back(gen.message(target));
        bytes += corpus.back().size();
    }

    std::vector<double> parse_us, eval_us, total_us, ten_kb_us, traced_us;
    std::size_t matched = 0, fields = 0;
    const std::vector<std::string> mine{"joe@example.com"};
    auto run = [&] {
        parse_us.clear(), eval_us.clear(), total_us.clear(), ten_kb_us.clear(), traced_us.clear();
        matched = fields = 0;
        for (auto& raw : corpus) {
            auto t0 = Clock::now();
            qv::Message m = qv::parse_message(raw);
            double p = us_since(t0);
            auto t1 = Clock::now();
            auto d = engine.evaluate(m, mine);
            double e = us_since(t1);
            parse_us.push_back(p);
            eval_us.push_back(e);
            total_us.push_back(p + e);
            if (raw.size() >= 9 * 1024 && raw.size() <= 11 * 1024) ten_kb_us.push_back(p + e);
            matched += d.matched;
            fields += m.headers.size();
        }
    };
    run();  // warm up
    auto wall = Clock::now();
    run();
    double wall_s = us_since(wall) / 1e6;
    for (auto& raw : corpus) {  // with the trace that vcfilter --test prints
        auto t0 = Clock::now();
        auto d = engine.evaluate(qv::parse_message(raw), mine, true);
        traced_us.push_back(us_since(t0));
        if (d.trace.size() != rules.size()) std::abort();
    }

    std::string line(30000, 'a');
    line += 'b';
    qv::Regex evil("(a+)+$");
    auto t2 = Clock::now();
    auto evil_result = evil.match(line);
    double evil_ms = us_since(t2) / 1000;

    std::string hostile = "Subject: ";
    for (int i = 0; i < 150000; ++i) hostile += "=?a?q?x";  // 1 MB of encoded words that never end
    hostile += "\n\n";
    auto t3 = Clock::now();
    auto hostile_fields = qv::parse_message(hostile).headers.size();
    double hostile_ms = us_since(t3) / 1000;

    std::printf(
        "filter engine: %zu rules (compiled in %.0f us), %d messages, %.1f MB, mean %.1f KB, %.1f header fields each\n",
        rules.size(), compile_us, messages, static_cast<double>(bytes) / 1e6,
        static_cast<double>(bytes) / messages / 1024, static_cast<double>(fields) / messages);
    std::printf("rules matched on %zu messages (none should: every rule is tried on every message)\n", matched);
    std::printf("messages per second (read + all rules): %.0f\n", messages / wall_s);
    std::printf("per message, us:        mean %8.1f  p50 %8.1f  p99 %8.1f\n", mean(total_us), quantile(total_us, 0.5),
                quantile(total_us, 0.99));
    std::printf("  reading the message:  mean %8.1f  p50 %8.1f  p99 %8.1f\n", mean(parse_us), quantile(parse_us, 0.5),
                quantile(parse_us, 0.99));
    std::printf("  applying the rules:   mean %8.1f  p50 %8.1f  p99 %8.1f\n", mean(eval_us), quantile(eval_us, 0.5),
                quantile(eval_us, 0.99));
    std::printf("  with the trace:       mean %8.1f  p50 %8.1f  p99 %8.1f\n", mean(traced_us), quantile(traced_us, 0.5),
                quantile(traced_us, 0.99));
    std::printf("cost per rule: %.3f us (applying the rules / %zu)\n",
                mean(eval_us) / static_cast<double>(rules.size()), rules.size());
    std::printf(
        "10 KB messages (9-11 KB, %zu of them), read + %zu rules: mean %.1f us, p99 %.1f us (target: < 1000 us)\n",
        ten_kb_us.size(), rules.size(), mean(ten_kb_us), quantile(ten_kb_us, 0.99));
    std::printf("catastrophic regex (a+)+$ on 30,000 a's and a b: %s after %.2f ms\n", qv::to_string(evil_result),
                evil_ms);
    std::printf("a 1 MB Subject of 150,000 unfinished encoded words: read in %.2f ms (%zu field)\n", hostile_ms,
                hostile_fields);

    if (!outdir.empty()) {
        std::filesystem::create_directories(outdir / "msg");
        std::ofstream tsv(outdir / "rules.tsv"), rc(outdir / "procmailrc");
        rc << "# " << specs.size() << " rules, the same as vcfilter's\nDEFAULT=/dev/null\nLOGFILE=/dev/null\n\n";
        for (std::size_t i = 0; i < specs.size(); ++i) {
            tsv << rules[i].name << '\t' << (specs[i].header ? specs[i].header : "-") << '\t' << rules[i].comparison
                << '\t' << rules[i].keyword << '\t' << rules[i].folder << '\n';
            rc << ":0 H\n" << procmail_condition(specs[i]) << "\n/dev/null\n\n";
        }
        for (int i = 0; i < std::min(messages, 1000); ++i) {
            char name[32];
            std::snprintf(name, sizeof name, "%04d.eml", i);
            std::ofstream(outdir / "msg" / name, std::ios::binary) << corpus[static_cast<std::size_t>(i)];
        }
    }
    return matched == 0 ? 0 : 1;
}
