// Which of a virtual domain's addresses take mail. See recipient.hpp.
#include "qvmail/recipient.hpp"

#include "qvmail/delivery_instruction.hpp"
#include "qvmail/domain.hpp"
#include "qvmail/error.hpp"
#include "qvmail/paths.hpp"
#include "qvmail/store.hpp"
#include "qvmail/text.hpp"

namespace qv {

namespace {
constexpr int kMaxExtensions = 32;
}  // namespace

std::optional<VirtualRecipient> resolve_virtual_recipient(const Paths& paths, const std::function<Store&()>& open_store,
                                                          std::string_view local_in, std::string_view domain_in,
                                                          bool qmail_ext) {
    auto d = find_domain(paths, ascii_lower(domain_in));
    if (!d) return std::nullopt;
    return resolve_virtual_recipient(open_store, *d, local_in, qmail_ext);
}

VirtualRecipient resolve_virtual_recipient(const std::function<Store&()>& open_store, const Domain& d,
                                           std::string_view local_in, bool qmail_ext) {
    Store& store = open_store();
    const std::string local = ascii_lower(local_in.empty() ? std::string_view("postmaster") : local_in);
    DomainRef ref = d.ref();
    auto alias = [&](const std::string& name) {
        // qmail-local's .qmail-<name> in the domain directory, or the store's alias (valias)
        return path_exists(d.dir / qmail_alias_file(name)) || !store.alias_lines(ref, name).empty();
    };
    if (local.find('/') == std::string::npos) {  // never a path into the domain directory
        if (auto u = store.get_user(ref, local)) return VirtualRecipient{VirtualRecipient::mailbox, local, std::move(u)};
        if (alias(local)) return VirtualRecipient{VirtualRecipient::alias, local, {}};
        // qmail-local's extensions: for a-b-c, .qmail-a-b-default, then .qmail-a-default (the longest
        // kMaxExtensions of them: an address of a thousand dashes is not a thousand lookups)
        int tries = 0;
        for (std::size_t dash = local.rfind('-'); dash != std::string::npos && dash > 0;
             dash = local.rfind('-', dash - 1)) {
            if (++tries > kMaxExtensions)  // not looked up: taken, as one of them may exist
                return VirtualRecipient{VirtualRecipient::handler, "more extensions than are looked up", {}};
            std::string name = local.substr(0, dash) + "-default";
            if (alias(name)) return VirtualRecipient{VirtualRecipient::alias, name, {}};
        }
        if (qmail_ext)
            if (std::size_t dash = local.find('-'); dash != std::string::npos && dash > 0)
                if (auto u = store.get_user(ref, local.substr(0, dash)))
                    return VirtualRecipient{VirtualRecipient::mailbox, local.substr(0, dash), std::move(u)};
    }
    if (!path_exists(d.dir / ".qmail-default")) return VirtualRecipient{VirtualRecipient::nobody, "", {}};
    if (!d.delivery) return VirtualRecipient{VirtualRecipient::handler, "a .qmail-default qvmail did not write", {}};
    if (d.delivery->handler == kDefaultHandler) return VirtualRecipient{VirtualRecipient::nobody, d.delivery->handler, {}};
    return VirtualRecipient{VirtualRecipient::handler, d.delivery->handler, {}};
}

}  // namespace qv
