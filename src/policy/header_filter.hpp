// Which headers cross the gateway. Hop-by-hop headers belong to one connection; credentials are
// replaced by the endpoint's own; x-ballast-* are ballast's controls; encodings are negotiated by
// ballast itself so it can read the streams it relays.
#pragma once

#include <string_view>

namespace ballast {

// Client request header → upstream request. `name` may be in any case.
bool forward_request_header(std::string_view name);
// Upstream response header → client response.
bool forward_response_header(std::string_view name);

bool iequals(std::string_view a, std::string_view b);

}  // namespace ballast
