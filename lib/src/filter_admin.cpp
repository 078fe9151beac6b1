// vcfilter's changes to the filter rules, and the rule sets that apply to a mailbox.
#include <algorithm>

#include "qvmail/error.hpp"
#include "qvmail/filter.hpp"
#include "qvmail/message.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/transaction.hpp"
#include "qvmail/user.hpp"

namespace qv {

namespace fs = std::filesystem;

namespace {

// The Maildir flag file IndiMail's vfilter looks for before it reads an address's own rules.
std::optional<fs::path> flag_file(const FilterOwner& o) {
    if (!o.mailbox || o.mailbox->dir.empty()) return std::nullopt;
    return fs::path(o.mailbox->dir) / "Maildir" / "vfilter";
}

void check_unique(const std::vector<FilterRule>& rules, const FilterRule& r, const std::string& address) {
    for (auto& o : rules)
        if (o.number != r.number && same_filter_test(o, r))
            throw Error(Exit::exists, "filter " + std::to_string(o.number) + " of " + address +
                                          " already has this header, comparison, keyword and folder");
}

const FilterRule* find_rule(const std::vector<FilterRule>& rules, int number) {
    auto it = std::find_if(rules.begin(), rules.end(), [&](const FilterRule& r) { return r.number == number; });
    return it == rules.end() ? nullptr : &*it;
}

const FilterRule& require_rule(const std::vector<FilterRule>& rules, int number, const FilterOwner& o) {
    const FilterRule* r = find_rule(rules, number);
    if (!r) throw Error(Exit::missing, "no filter " + std::to_string(number) + " for " + o.address());
    return *r;
}

// Runs `change` (which stages into the store and `tx`) as one change: committed whole, or undone. On
// MariaDB, two hosts adding the first rules of one address at once can deadlock on the locks that keep
// their numbers apart; the server then rolls one back (Error 75), and it runs again (retry_rolled_back).
template <typename Fn>
void change_filters(Store& store, bool dry_run, ChangeReport* report, Fn&& change) {
    retry_rolled_back(store, [&] {
        FileTransaction tx(dry_run);
        change(tx);
        apply_change(tx, store);
        if (report) report->steps = tx.log();
    });
}

}  // namespace

std::vector<FilterSet> filter_chain(Store& store, const Domain& d, std::string_view local,
                                    const std::optional<fs::path>& maildir) {
    DomainRef ref = d.ref();
    auto set = [&](FilterStage stage, const std::string& who, const char* flag) {
        FilterSet s{stage, who + "@" + d.name, store.filters(ref, who), {}};
        std::error_code ec;
        if (flag && maildir && fs::exists(*maildir / flag, ec)) s.skipped = "Maildir/" + std::string(flag) + " exists";
        return s;
    };
    if (is_filter_pseudo_user(local))
        return {set(local == "prefilt" ? FilterStage::prefilt : FilterStage::postfilt, std::string(local), nullptr)};
    return {set(FilterStage::prefilt, "prefilt", "noprefilt"), set(FilterStage::user, std::string(local), nullptr),
            set(FilterStage::postfilt, "postfilt", "nopostfilt")};
}

FilterOwner filter_owner(const Paths& paths, Store& store, const Address& a) {
    if (auto r = reserved_filter_local(a.local))
        throw Error(Exit::dataerr, "no filters for " + a.str() + ": " + std::string(*r) +
                                       " is reserved (postmaster, abuse, mailer-daemon, spam, nonspam, "
                                       "register-spam, register-nonspam)");
    if (a.str().size() > kFilterEmailMax)
        throw Error(Exit::dataerr, a.str() + ": longer than the " + std::to_string(kFilterEmailMax) +
                                       " characters the vfilter table holds");
    FilterOwner o{require_domain(paths, store, a.domain), a.local, std::nullopt};
    if (!is_filter_pseudo_user(a.local)) o.mailbox = require_user(store, o.domain, a.local);
    return o;
}

FilterRule add_filter(Store& store, const FilterOwner& o, FilterRule rule, const HeaderList& headers, bool dry_run,
                      ChangeReport* report) {
    check_filter_rule(rule, headers);
    change_filters(store, dry_run, report, [&](FileTransaction& tx) {
        DomainRef ref = o.domain.ref();
        auto rules = store.filters(ref, o.local, true);
        if (rule.comparison == static_cast<int>(Comparison::not_my_id)) {
            if (find_rule(rules, 0))
                throw Error(Exit::exists, o.address() + " has a '" +
                                              std::string(comparison_name(Comparison::not_my_id)) +
                                              "' rule already (filter 0): there can be one");
            rule.number = 0;
        } else {
            int count = 0;
            for (auto& r : rules) count += r.number > 0;
            if (count >= kMaxFiltersPerAddress)
                throw Error(Exit::dataerr,
                            o.address() + " has " + std::to_string(count) + " filters, the most allowed");
            rule.number = 1;  // the lowest free number: the first gap
            for (auto& r : rules)
                if (r.number == rule.number) ++rule.number;
        }
        check_unique(rules, rule, o.address());
        store.add_filter(ref, o.local, rule);
        tx.note("add filter " + std::to_string(rule.number) + " '" + rule.name + "' for " + o.address());
        std::error_code ec;
        if (auto flag = flag_file(o);
            flag && rules.empty() && !fs::exists(*flag, ec) && fs::is_directory(flag->parent_path(), ec))
            tx.write(*flag, "", 0644, o.domain.owner);
    });
    return rule;
}

FilterRule update_filter(Store& store, const FilterOwner& o, int number, const FilterUpdate& u,
                         const HeaderList& headers, bool dry_run, ChangeReport* report) {
    FilterRule rule;
    change_filters(store, dry_run, report, [&](FileTransaction& tx) {
        DomainRef ref = o.domain.ref();
        auto rules = store.filters(ref, o.local, true);
        const FilterRule& old = require_rule(rules, number, o);
        rule = old;
        if (u.name) rule.name = *u.name;
        if (u.header) rule.header = *u.header;
        if (u.comparison) rule.comparison = *u.comparison;
        if (u.keyword) rule.keyword = *u.keyword;
        if (u.folder) rule.folder = *u.folder;
        if (u.action) rule.action = *u.action;
        constexpr int mine = static_cast<int>(Comparison::not_my_id);
        if ((old.comparison == mine) != (rule.comparison == mine))
            throw Error(Exit::usage, "a '" + std::string(comparison_name(Comparison::not_my_id)) +
                                         "' rule is always filter 0: delete filter " + std::to_string(number) +
                                         " and insert the new rule instead");
        check_filter_rule(rule, headers);
        check_unique(rules, rule, o.address());
        store.update_filter(ref, o.local, rule);
        tx.note("change filter " + std::to_string(number) + " '" + rule.name + "' of " + o.address());
    });
    return rule;
}

FilterRule delete_filter(Store& store, const FilterOwner& o, int number, bool dry_run, ChangeReport* report) {
    FilterRule rule;
    change_filters(store, dry_run, report, [&](FileTransaction& tx) {
        DomainRef ref = o.domain.ref();
        auto rules = store.filters(ref, o.local, true);
        rule = require_rule(rules, number, o);
        store.remove_filter(ref, o.local, number);
        tx.note("remove filter " + std::to_string(number) + " '" + rule.name + "' of " + o.address());
        std::error_code ec;
        if (auto flag = flag_file(o); flag && rules.size() == 1 && fs::exists(*flag, ec)) tx.remove(*flag);
    });
    return rule;
}

}  // namespace qv
