-- SPDX-License-Identifier: MIT
-- wrk script: every write carries 16 pipelined "GET /plaintext" requests.
local depth = 16
local batch

function init(args)
    local one = wrk.format("GET", "/plaintext", { ["Host"] = "localhost" })
    batch = string.rep(one, depth)
end

function request()
    return batch
end
