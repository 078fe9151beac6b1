// Aliases of virtual domains. See alias.hpp.
#include "qvmail/alias.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "qvmail/delivery_instruction.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/text.hpp"
#include "qvmail/transaction.hpp"

namespace qv {

namespace {

[[noreturn]] void bad_line(std::string_view line, const std::string& why) {
    throw Error(Exit::dataerr, "delivery line \"" + printable(line) + "\": " + why);
}

// The address a line forwards to, if it is a forward.
std::optional<Address> forward_target(std::string_view line) {
    DotQmailLine l = classify_dot_qmail_line(line);
    if (l.kind != DotQmailLine::forward) return std::nullopt;
    try {
        return parse_address(l.text);
    } catch (const Error&) {
        return std::nullopt;
    }
}

// A stored line as check_alias_line would write it, or as it is when it does not pass (written by hand).
std::string normal_form(std::string_view line) {
    try {
        return check_alias_line(line);
    } catch (const Error&) {
        return std::string(line);
    }
}

}  // namespace

std::string check_alias_line(std::string_view in) {
    std::string_view line = trim_blanks(in);
    if (line.empty()) bad_line(in, "empty");
    for (unsigned char c : line)
        if (c < 0x20 || c == 0x7f) bad_line(in, "a line end or another control character");
    DotQmailLine l = classify_dot_qmail_line(line);
    if (l.kind == DotQmailLine::nothing) bad_line(in, "a comment delivers nothing");
    if (l.kind == DotQmailLine::program) {
        if (trim_blanks(l.text).empty()) bad_line(in, "a program line without a command");
        return std::string(line);
    }
    if (l.kind == DotQmailLine::path) {
        if (line[0] == '.' && !line.starts_with("./")) bad_line(in, "a path under the domain directory starts with ./");
        if (line.back() != '/') bad_line(in, "not a Maildir (end it with '/'; mbox files are not delivered to)");
        std::string_view rest = line;
        while (!rest.empty()) {
            std::size_t slash = rest.find('/');
            if (rest.substr(0, slash) == "..") bad_line(in, "a path with \"..\"");
            if (slash == std::string_view::npos) break;
            rest.remove_prefix(slash + 1);
        }
        return std::string(line);
    }
    try {
        return "&" + parse_address(l.text).str();
    } catch (const Error& e) {
        bad_line(in, std::string("not an address, a |program or a Maildir path (") + e.what() + ")");
    }
}

std::vector<AliasEntry> list_aliases(const Paths& paths, Store& store, std::string_view domain, std::string_view local) {
    std::vector<Domain> domains;
    if (domain.empty())
        domains = list_domains(paths);
    else
        domains.push_back(require_domain(paths, store, domain));
    std::vector<AliasEntry> out;
    for (const Domain& d : domains) {
        DomainRef ref = d.ref();
        std::vector<std::string> names;
        if (local.empty())
            names = store.aliases(ref);
        else
            names.emplace_back(local);
        std::sort(names.begin(), names.end());
        for (const auto& name : names) {
            auto lines = store.alias_lines(ref, name);
            if (!lines.empty()) out.push_back({name + "@" + d.name, std::move(lines)});
        }
    }
    return out;
}

std::vector<AliasEntry> aliases_forwarding_to(const Paths& paths, Store& store, const Address& target) {
    std::vector<AliasEntry> out;
    for (auto& e : list_aliases(paths, store, {}))
        for (const auto& line : e.lines)
            if (auto t = forward_target(trim_blanks(line)); t && t->str() == target.str()) {
                out.push_back(e);
                break;
            }
    return out;
}

std::vector<std::string> retarget_forwards(const Paths& paths, Store& store, const std::string& from,
                                           const std::string& to) {
    const bool whole_domain = from.starts_with("@");
    std::map<std::string, std::string> real;  // domain -> its real domain's name ("" if not served here)
    auto real_name = [&](const std::string& domain) -> const std::string& {
        auto it = real.find(domain);
        if (it == real.end()) {
            auto d = find_domain(paths, domain);
            it = real.emplace(domain, d ? d->name : std::string()).first;
        }
        return it->second;
    };
    std::string want = from;
    if (!whole_domain) {
        Address a = parse_address(from);
        want = a.local + "@" + real_name(a.domain);
    }
    std::vector<std::string> changed;
    for (const Domain& d : list_domains(paths)) {
        DomainRef ref = d.ref();
        for (const auto& alias : store.aliases(ref)) {
            auto lines = store.alias_lines(ref, alias);
            bool any = false;
            for (auto& l : lines) {
                auto t = forward_target(trim_blanks(l));
                if (!t) continue;
                if (whole_domain ? "@" + t->domain == want : t->local + "@" + real_name(t->domain) == want) {
                    l = "&" + (whole_domain ? t->local + to : to);
                    any = true;
                }
            }
            if (!any) continue;
            store.set_alias(ref, alias, lines);
            changed.push_back(alias + "@" + d.name);
        }
    }
    return changed;
}

namespace {

AliasChangeResult change_alias_once(const Paths& paths, Store& store, const Address& alias, const AliasChange& change,
                                    bool dry_run) {
    Domain d = require_domain(paths, store, alias.domain);
    DomainRef ref = d.ref();
    AliasChangeResult result;
    const std::string line = result.line = check_alias_line(change.line);
    if (change.kind == AliasChange::update) result.old_line = check_alias_line(change.old_line);
    std::vector<std::string> lines = store.alias_lines(ref, alias.local, true);
    auto find = [&](const std::string& want) {
        return std::find_if(lines.begin(), lines.end(), [&](const std::string& l) { return normal_form(l) == want; });
    };
    std::optional<std::string> taken, added;  // the stored line taken out, the line added
    switch (change.kind) {
        case AliasChange::insert:
            if (find(line) != lines.end()) throw Error(Exit::exists, alias.str() + " has the line " + line + " already");
            added = line;
            lines.push_back(line);
            break;
        case AliasChange::remove: {
            auto it = find(line);
            if (it == lines.end()) throw Error(Exit::missing, alias.str() + " has no line " + line);
            taken = *it;
            lines.erase(it);
            break;
        }
        case AliasChange::update: {
            auto it = find(result.old_line);
            if (it == lines.end()) throw Error(Exit::missing, alias.str() + " has no line " + result.old_line);
            if (find(line) != lines.end()) throw Error(Exit::exists, alias.str() + " has the line " + line + " already");
            taken = *it;
            added = line;
            *it = line;
            break;
        }
    }

    // Mail must not go round between local aliases: follow the forwards of the alias as it will be,
    // through the aliases of this host's domains (a mailbox of the name takes the mail first: the
    // forwards stop there).
    // (An alias domain's address is its real domain's: compared by the real domain's name.)
    const std::string self = alias.local + "@" + d.name;
    std::vector<std::string> path{alias.str()};
    std::set<std::string> seen;
    std::function<void(const std::vector<std::string>&)> follow = [&](const std::vector<std::string>& ls) {
        for (const auto& l : ls) {
            auto t = forward_target(trim_blanks(l));
            if (!t) continue;
            auto td = find_domain(paths, t->domain);
            if (!td) continue;  // not a domain of this host
            const std::string to = t->local + "@" + td->name;
            if (to == self) {
                std::string loop;
                for (const auto& p : path) loop += p + " -> ";
                throw Error(Exit::dataerr, "mail would loop: " + loop + t->str());
            }
            if (!seen.insert(to).second) continue;
            DomainRef tref = td->ref();
            if (store.get_user(tref, t->local)) continue;
            path.push_back(t->str());
            follow(store.alias_lines(tref, t->local));
            path.pop_back();
        }
    };
    result.mailbox_first = store.get_user(ref, alias.local).has_value();
    if (!result.mailbox_first) follow(lines);  // else its lines are never read (and go with the mailbox)
    FileTransaction tx(dry_run);
    store.change_alias_line(ref, alias.local, taken, added);
    apply_change(tx, store);
    result.steps = tx.log();
    result.lines = std::move(lines);
    return result;
}

}  // namespace

AliasChangeResult change_alias(const Paths& paths, Store& store, const Address& alias, const AliasChange& change,
                               bool dry_run) {
    AliasChangeResult r;
    retry_rolled_back(store, [&] { r = change_alias_once(paths, store, alias, change, dry_run); });
    return r;
}

}  // namespace qv
