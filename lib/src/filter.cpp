// The mail filter model and engine: header list, comparisons, rule checks, the files store's rules
// format, and evaluation. filter_admin.cpp has vcfilter's changes.
#include "qvmail/filter.hpp"

#include <algorithm>
#include <charconv>

#include "qvmail/control.hpp"
#include "qvmail/error.hpp"
#include "qvmail/expression.hpp"
#include "qvmail/line_reader.hpp"
#include "qvmail/message.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/regex.hpp"
#include "qvmail/text.hpp"

namespace qv {

extern const char kShippedHeaderList[];  // data/headerlist, compiled in (headerlist_data.cpp)

namespace fs = std::filesystem;

namespace {

bool has_control(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f) return true;
    return false;
}

// Characters (UTF-8 code points), as the table's CHAR(n) columns count them.
std::size_t char_count(std::string_view s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

bool blank_at_end(std::string_view s) {
    return !s.empty() && (s.back() == ' ' || s.back() == '\t');
}

// The spellings of each line of a header list text: comments (#) and blank lines skipped.
struct ListLine {
    std::uint64_t line;
    std::vector<std::string> spellings;
};
std::vector<ListLine> header_list_lines(std::string_view text) {
    std::vector<ListLine> out;
    LineReader in = LineReader::from_text(text, "headerlist");
    std::string_view line;
    while (in.next(line)) {
        std::string_view body = line.substr(0, line.find('#'));
        ListLine l{in.line_number(), {}};
        std::size_t i = 0;
        while (i < body.size()) {
            while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r')) ++i;
            std::size_t j = i;
            while (j < body.size() && body[j] != ' ' && body[j] != '\t' && body[j] != '\r') ++j;
            if (j > i) l.spellings.emplace_back(body.substr(i, j - i));
            i = j;
        }
        if (!l.spellings.empty()) out.push_back(std::move(l));
    }
    return out;
}

struct ComparisonText {
    Comparison c;
    std::string_view name, slug;
    std::vector<std::string_view> aliases;
};
const std::vector<ComparisonText>& comparison_texts() {
    static const std::vector<ComparisonText> t = {
        {Comparison::equals, "Equals", "equals", {}},
        {Comparison::contains, "Contains", "contains", {}},
        {Comparison::not_contains, "Does not contain", "not-contains", {"does-not-contain"}},
        {Comparison::starts_with, "Starts with", "starts-with", {}},
        {Comparison::ends_with, "Ends with", "ends-with", {}},
        {Comparison::not_my_id,
         "My id not in To, CC, Bcc",
         "not-my-id",
         {"My id not in To/CC/Bcc", "My id not in To, Cc, Bcc"}},
        {Comparison::numeric, "Numerical Logical Expression", "numeric", {"expression"}},
        {Comparison::regex, "RegExp", "regex", {"regexp"}},
    };
    return t;
}

[[noreturn]] void bad(const std::string& what) {
    throw Error(Exit::dataerr, what);
}

// A forward address of bounce actions 2 and 3: local@domain, no blanks, brackets or separators.
void check_forward_address(std::string_view a, std::string_view whole) {
    std::size_t at = a.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == a.size())
        bad("-b " + printable(whole) + ": '" + printable(a) + "' is not an e-mail address (user@domain)");
    for (char c : a.substr(0, at))
        if (std::string_view(" \t<>()[],;:\\\"").find(c) != std::string_view::npos || c < 0x21 || c == 0x7f)
            bad("-b " + printable(whole) + ": '" + printable(a) + "' is not an e-mail address (user@domain)");
    try {
        normalize_domain(a.substr(at + 1));
    } catch (const Error& e) {
        bad("-b " + printable(whole) + ": " + e.what());
    }
}

}  // namespace

// ---- header list ----

void HeaderList::add(std::vector<std::string> spellings) {
    int n = static_cast<int>(names_.size());
    for (auto& s : spellings) index_.emplace(ascii_lower(s), n);
    names_.push_back(std::move(spellings));
}

const HeaderList& HeaderList::builtin() {
    static const HeaderList list = [] {
        HeaderList l;
        for (auto& line : header_list_lines(kShippedHeaderList)) l.add(line.spellings);
        l.source_ = "built-in (version " + std::to_string(kHeaderListVersion) + ")";
        return l;
    }();
    return list;
}

HeaderList HeaderList::extend(const HeaderList& base, std::string_view text, const fs::path& file) {
    HeaderList l = base;
    l.source_ = file.string();
    int n = 0;
    for (auto& line : header_list_lines(text)) {
        auto where = [&] { return file.string() + ":" + std::to_string(line.line) + ": "; };
        if (n < base.size()) {
            auto known = base.number(line.spellings[0]);
            if (!known || *known != n)
                throw Error(Exit::config, where() + "header " + std::to_string(n) + " is '" +
                                              printable(line.spellings[0]) + "' here but '" +
                                              std::string(base.name(n)) +
                                              "' in qvmail's list: the rules already stored would change meaning "
                                              "(names may only be appended)");
            for (std::size_t i = 1; i < line.spellings.size(); ++i) {  // further spellings of a shipped name
                const std::string& sp = line.spellings[i];
                auto k = l.number(sp);
                if (k && *k != n)
                    throw Error(Exit::config,
                                where() + "'" + printable(sp) + "' is header " + std::to_string(*k) + " already");
                if (!k) {
                    l.index_.emplace(ascii_lower(sp), n);
                    l.names_[static_cast<std::size_t>(n)].push_back(sp);
                }
            }
        } else {
            for (auto& s : line.spellings)
                if (auto k = l.number(s))
                    throw Error(Exit::config,
                                where() + "'" + printable(s) + "' is header " + std::to_string(*k) + " already");
            l.add(line.spellings);
        }
        ++n;
    }
    return l;
}

HeaderList HeaderList::load(const Paths& paths) {
    fs::path file = paths.etc_dir() / "headerlist";
    try {
        ControlFile f = ControlFile::load(file);
        return f.exists() ? extend(builtin(), f.text(), file) : builtin();
    } catch (const Error& e) {
        if (e.code() == Exit::config) throw;
        throw Error(Exit::config, e.what());  // unreadable: the site's list is configuration
    }
}

std::optional<int> HeaderList::number(std::string_view name) const {
    auto it = index_.find(ascii_lower(name));
    if (it == index_.end()) return std::nullopt;
    return it->second;
}

std::string_view HeaderList::name(int n) const {
    if (n < 0 || n >= size()) return {};
    return names_[static_cast<std::size_t>(n)][0];
}

// ---- comparisons and actions ----

std::string_view comparison_name(Comparison c) noexcept {
    return comparison_texts()[static_cast<std::size_t>(c)].name;
}

std::string_view comparison_slug(Comparison c) noexcept {
    return comparison_texts()[static_cast<std::size_t>(c)].slug;
}

std::optional<Comparison> parse_comparison(std::string_view text) {
    int n = -1;
    auto r = std::from_chars(text.data(), text.data() + text.size(), n);
    if (r.ec == std::errc() && r.ptr == text.data() + text.size())
        return n >= 0 && n < kComparisonCount ? std::optional(static_cast<Comparison>(n)) : std::nullopt;
    for (auto& t : comparison_texts()) {
        if (equal_ignoring_case(text, t.name) || equal_ignoring_case(text, t.slug)) return t.c;
        for (auto a : t.aliases)
            if (equal_ignoring_case(text, a)) return t.c;
    }
    return std::nullopt;
}

BounceAction parse_bounce_action(std::string_view text) {
    BounceAction a;
    if (text == "0") return a;
    if (text == "1") {
        a.bounce = true;
        return a;
    }
    if (text.size() >= 3 && (text[0] == '2' || text[0] == '3') && (text[1] == '&' || text[1] == '|')) {
        a.bounce = text[0] == '3';
        a.target = std::string(text.substr(2));
        if (has_control(a.target)) bad("-b " + printable(text) + ": control characters are not allowed");
        if (text[1] == '&') {
            a.forward = BounceAction::address;
            check_forward_address(a.target, text);
        } else {
            a.forward = BounceAction::program;
            if (a.target.find_first_not_of(" \t") == std::string::npos) bad("-b " + printable(text) + ": no program");
        }
        return a;
    }
    bad("-b '" + printable(text) +
        "': not a bounce action (0 deliver, 1 bounce, 2&address or 2|program: send a copy on, 3&address or "
        "3|program: both)");
}

std::string describe_bounce_action(std::string_view text) {
    BounceAction a;
    try {
        a = parse_bounce_action(text);
    } catch (const Error&) {
        return "invalid (" + printable(text) + ")";
    }
    std::string s = a.bounce ? "bounce" : "";
    if (a.forward != BounceAction::none)
        s += (s.empty() ? "" : ", ") + std::string(a.forward == BounceAction::address ? "forward to " : "pipe to ") +
             a.target;
    return s.empty() ? "deliver" : s;
}

bool is_filter_pseudo_user(std::string_view local) noexcept {
    return local == "prefilt" || local == "postfilt";
}

std::optional<std::string_view> reserved_filter_local(std::string_view local) noexcept {
    for (std::string_view r :
         {"postmaster", "abuse", "mailer-daemon", "spam", "nonspam", "register-spam", "register-nonspam"})
        if (local == r) return r;
    return std::nullopt;
}

namespace {

// What a text column of the vfilter table takes: at most `max` characters, no control characters, UTF-8,
// no blank at the end (a CHAR column drops it). `option` names the field in messages.
void check_column(std::string_view option, const std::string& v, std::size_t max) {
    const std::string f = std::string(option) + " '" + printable(v) + "': ";
    if (char_count(v) > max) bad(f + "longer than " + std::to_string(max) + " characters");
    if (has_control(v)) bad(f + "control characters are not allowed");
    if (!is_utf8(v)) bad(f + "not UTF-8 text");
    if (blank_at_end(v)) bad(f + "ends with a blank, which the vfilter table would drop");
}

}  // namespace

void check_filter_folder(std::string& folder) {
    if (folder.empty()) bad("-f: a filter needs a folder (Inbox, a folder name, or /NoDeliver)");
    if (equal_ignoring_case(folder, kInbox)) folder = kInbox;
    if (equal_ignoring_case(folder, kNoDeliver)) folder = kNoDeliver;
    if (folder == kNoDeliver) return;
    const std::string f = "-f '" + printable(folder) + "': ";
    if (folder[0] == '.') bad(f + "a folder name cannot start with '.'");
    if (folder.find('/') != std::string::npos) bad(f + "a folder name cannot contain '/' (only /NoDeliver does)");
    if (folder.find("..") != std::string::npos || folder.back() == '.')
        bad(f + "'.' separates folder levels: no empty level");
    check_column("-f", folder, kFilterFolderMax);
}

void check_filter_rule(FilterRule& r, const HeaderList& headers) {
    if (r.name.empty()) bad("-t: a filter needs a name");
    check_column("-t", r.name, kFilterNameMax);

    if (r.comparison < 0 || r.comparison >= kComparisonCount)
        bad("-c " + std::to_string(r.comparison) + ": not a comparison (0-" + std::to_string(kComparisonCount - 1) +
            ")");
    auto cmp = static_cast<Comparison>(r.comparison);
    if (cmp == Comparison::not_my_id) {
        r.header = -1;
        r.keyword.clear();
    } else {
        if (r.header < 0 || r.header >= headers.size())
            bad("-h " + std::to_string(r.header) + ": not in the header list (0-" + std::to_string(headers.size() - 1) +
                ")");
        if (r.keyword.empty()) bad("-k: comparison '" + std::string(comparison_name(cmp)) + "' needs a keyword");
        check_column("-k", r.keyword, kFilterKeywordMax);
        if (cmp == Comparison::numeric) {
            std::optional<NumericExpression> e;
            try {
                e.emplace(NumericExpression::parse(r.keyword));
            } catch (const Error& x) {
                bad(std::string("-k: ") + x.what());
            }
            if (!e->uses_value()) bad("-k '" + printable(r.keyword) + "': the expression does not use %p");
        } else if (cmp == Comparison::regex) {
            try {
                Regex re(r.keyword);
            } catch (const Error& e) {
                bad(std::string("-k: ") + e.what());
            }
        }
    }

    check_filter_folder(r.folder);

    if (char_count(r.action) > kFilterActionMax)
        bad("-b '" + printable(r.action) + "': longer than " + std::to_string(kFilterActionMax) + " characters");
    parse_bounce_action(r.action);
}

// ---- the engine ----

const char* to_string(FilterStage s) noexcept {
    switch (s) {
        case FilterStage::prefilt:
            return "prefilt";
        case FilterStage::postfilt:
            return "postfilt";
        case FilterStage::user:
            break;
    }
    return "user";
}

const char* to_string(RuleTrace::Outcome o) noexcept {
    switch (o) {
        case RuleTrace::matched:
            return "matched";
        case RuleTrace::absent:
            return "absent";
        case RuleTrace::skipped:
            return "skipped";
        case RuleTrace::failed:
            return "failed";
        case RuleTrace::no_match:
            break;
    }
    return "no match";
}

std::string describe_decision(const FilterDecision& d) {
    if (!d.matched) return "no rule matched: deliver to Inbox";
    std::vector<std::string> steps;
    switch (d.delivery) {
        case FilterDecision::Delivery::inbox:
            steps.push_back("deliver to Inbox");
            break;
        case FilterDecision::Delivery::folder:
            steps.push_back("deliver to folder " + d.folder);
            break;
        case FilterDecision::Delivery::discard:
            steps.push_back("deliver nowhere (/NoDeliver)");
            break;
    }
    if (d.action.forward == BounceAction::address) steps.push_back("forward a copy to " + d.action.target);
    if (d.action.forward == BounceAction::program) steps.push_back("pipe a copy to " + d.action.target);
    if (d.action.bounce) steps.push_back("bounce the message to its sender");
    std::string s = "filter " + std::to_string(d.rule.number) + " '" + d.rule.name + "' of " + d.address + " matched: ";
    for (std::size_t i = 0; i < steps.size(); ++i) s += (i ? ", then " : "") + steps[i];
    return s;
}

struct FilterEngine::Compiled {
    struct Rule {
        const FilterRule* rule = nullptr;
        Comparison cmp = Comparison::equals;
        std::string keyword;  // folded
        std::optional<Regex> regex;
        std::optional<NumericExpression> expr;
        BounceAction action;
        FilterDecision::Delivery delivery = FilterDecision::Delivery::inbox;
        std::string folder;  // with Delivery::folder
        std::string skip;    // why the rule cannot be applied
    };

    // A message as the rules see it: its fields by header number, their values folded when first needed.
    struct Fields {
        Fields(const Message& m, const HeaderList& headers)
            : message(m), by_number(static_cast<std::size_t>(headers.size())), folded_(m.headers.size()) {
            for (std::size_t i = 0; i < m.headers.size(); ++i)
                if (auto n = headers.number(m.headers[i].name)) by_number[static_cast<std::size_t>(*n)].push_back(i);
        }
        const std::string& folded(std::size_t i) {
            if (!folded_[i]) folded_[i] = fold_case(message.headers[i].value);
            return *folded_[i];
        }
        const Message& message;
        std::vector<std::vector<std::size_t>> by_number;

    private:
        std::vector<std::optional<std::string>> folded_;
    };

    struct Result {
        RuleTrace::Outcome outcome = RuleTrace::no_match;
        std::string detail;
    };
    static Result test(const Rule& c, Fields& fields, const HeaderList& headers, const std::vector<std::string>& mine);

    std::vector<std::vector<Rule>> sets;
};

FilterEngine::FilterEngine(std::vector<FilterSet> sets, const HeaderList& headers)
    : sets_(std::move(sets)), compiled_(std::make_unique<Compiled>()), headers_(headers) {
    for (auto& s : sets_) {
        auto& out = compiled_->sets.emplace_back();
        for (auto& r : s.rules) {
            Compiled::Rule c;
            c.rule = &r;
            try {
                if (r.comparison < 0 || r.comparison >= kComparisonCount)
                    throw Error(Exit::dataerr, "comparison " + std::to_string(r.comparison) + " is not one of 0-7");
                c.cmp = static_cast<Comparison>(r.comparison);
                c.action = parse_bounce_action(r.action);
                std::string folder = r.folder;  // never a path out of the Maildir, whoever wrote the rule
                check_filter_folder(folder);
                c.delivery = folder == kNoDeliver ? FilterDecision::Delivery::discard
                             : folder == kInbox   ? FilterDecision::Delivery::inbox
                                                  : FilterDecision::Delivery::folder;
                if (c.delivery == FilterDecision::Delivery::folder) c.folder = folder;
                if (c.cmp != Comparison::not_my_id) {
                    if (headers_.name(r.header).empty())
                        throw Error(Exit::dataerr,
                                    "header number " + std::to_string(r.header) + " is not in the header list");
                    if (r.keyword.empty()) throw Error(Exit::dataerr, "no keyword");
                }
                if (c.cmp == Comparison::regex) c.regex.emplace(r.keyword);
                if (c.cmp == Comparison::numeric) c.expr = NumericExpression::parse(r.keyword);
                c.keyword = fold_case(r.keyword);
            } catch (const Error& e) {
                c.skip = e.what();
            }
            out.push_back(std::move(c));
        }
    }
}

FilterEngine::~FilterEngine() = default;
FilterEngine::FilterEngine(FilterEngine&&) noexcept = default;

namespace {

std::string field_text(const HeaderField& f) {
    std::string s = f.name + ": " + f.value;
    if (f.part) s += " (MIME part " + std::to_string(f.part) + ")";
    return s;
}

bool is_recipient_field(std::string_view name) {
    return equal_ignoring_case(name, "To") || equal_ignoring_case(name, "Cc") || equal_ignoring_case(name, "Bcc");
}

}  // namespace

FilterEngine::Compiled::Result FilterEngine::Compiled::test(const Rule& c, Fields& fields, const HeaderList& headers,
                                                            const std::vector<std::string>& mine) {
    const Message& m = fields.message;
    if (!c.skip.empty()) return {RuleTrace::skipped, c.skip};
    if (c.cmp == Comparison::not_my_id) {
        for (auto& f : m.headers) {
            if (!is_recipient_field(f.name)) continue;
            for (auto& a : header_addresses(f.value))
                if (std::find(mine.begin(), mine.end(), a) != mine.end())
                    return {RuleTrace::no_match, f.name + " names " + a};
        }
        return {RuleTrace::matched, "the recipient is in none of To, Cc and Bcc"};
    }
    const std::string_view header = headers.name(c.rule->header);
    const auto& found = fields.by_number[static_cast<std::size_t>(c.rule->header)];
    if (found.empty()) return {RuleTrace::absent, "no " + std::string(header) + " field"};
    bool any_limit = false;
    std::string error;
    std::optional<std::size_t> hit;  // the field that decided
    for (std::size_t i : found) {
        bool match = false;
        switch (c.cmp) {
            case Comparison::equals:
                match = fields.folded(i) == c.keyword;
                break;
            case Comparison::contains:
            case Comparison::not_contains:
                match = fields.folded(i).find(c.keyword) != std::string::npos;
                break;
            case Comparison::starts_with:
                match = fields.folded(i).starts_with(c.keyword);
                break;
            case Comparison::ends_with:
                match = fields.folded(i).ends_with(c.keyword);
                break;
            case Comparison::numeric: {
                auto r = c.expr->evaluate(m.headers[i].value);
                match = r.matches();
                if (r.status != NumericExpression::Status::ok && error.empty())
                    error = field_text(m.headers[i]) + ": " + to_string(r.status);
                break;
            }
            case Comparison::regex: {
                auto r = c.regex->match(m.headers[i].value);
                match = r == Regex::Result::match;
                any_limit = any_limit || r == Regex::Result::limit_hit;
                break;
            }
            case Comparison::not_my_id:
                break;
        }
        if (match) {
            hit = i;
            break;
        }
    }
    if (c.cmp == Comparison::not_contains)
        return hit ? Result{RuleTrace::no_match, field_text(m.headers[*hit]) + " contains it"}
                   : Result{RuleTrace::matched, "no " + std::string(header) + " field contains it"};
    if (hit) return {RuleTrace::matched, field_text(m.headers[*hit])};
    if (any_limit) return {RuleTrace::failed, "no match, limit hit: the pattern backtracks too much"};
    if (!error.empty()) return {RuleTrace::failed, "no match, " + error};
    return {};
}

FilterDecision FilterEngine::evaluate(const Message& m, const std::vector<std::string>& mine, bool with_trace) const {
    FilterDecision d;
    Compiled::Fields fields(m, headers_);
    for (std::size_t k = 0; k < sets_.size(); ++k) {
        const FilterSet& set = sets_[k];
        if (!set.skipped.empty()) {
            d.notes.push_back(set.address + ": not applied, " + set.skipped);
            continue;
        }
        for (const Compiled::Rule& c : compiled_->sets[k]) {
            Compiled::Result r = Compiled::test(c, fields, headers_, mine);
            if (with_trace) d.trace.push_back(RuleTrace{set.stage, set.address, *c.rule, r.outcome, r.detail});
            if (r.outcome != RuleTrace::matched) continue;
            d.matched = true;
            d.stage = set.stage;
            d.address = set.address;
            d.rule = *c.rule;
            d.action = c.action;
            d.delivery = c.delivery;
            d.folder = c.folder;
            return d;
        }
    }
    return d;
}

}  // namespace qv
