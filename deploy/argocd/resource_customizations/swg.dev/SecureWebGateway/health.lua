-- Argo CD health of a SecureWebGateway (swg.dev/v1alpha1), from the status the operator writes:
-- observedGeneration, phase, and the kstatus conditions Ready / Reconciling / Stalled.
--
--   Healthy      Ready=True for the current generation
--   Progressing  no status yet, a generation not observed yet, Reconciling=True,
--                phase Provisioning, or Ready not (yet) True; phase Purging / Purged
--   Degraded     Stalled=True (the spec must change) or phase Degraded
--   Suspended    phase Suspended (spec.suspended: true); phase Cancelled: the contract was
--                cancelled and the tenant waits for its purge date (or a legal hold)
--
-- Argo CD itself reports "Progressing: Pending deletion" for any object with a deletionTimestamp
-- before it runs this script, so a cancelled tenant shows as Progressing in Argo CD until it is
-- purged; see docs/argocd.md. Written for gopher-lua (Lua 5.1): no goto, no integer division.
local hs = {}

local function condition_text(c)
  local text = c.type .. "=" .. tostring(c.status)
  if c.reason ~= nil and c.reason ~= "" then
    text = text .. " (" .. c.reason .. ")"
  end
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local status = obj.status
local conditions = {}
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type ~= nil then
      conditions[c.type] = c
    end
  end
end

local function is_true(kind)
  return conditions[kind] ~= nil and conditions[kind].status == "True"
end

local phase = status.phase
local cancellation = status.cancellation

-- Cancellation: traffic is stopped and the logs stay exportable until the purge.
if phase == "Cancelled" then
  hs.status = "Suspended"
  local text = "Cancelled"
  if cancellation ~= nil then
    if cancellation.cancelledAt ~= nil then
      text = text .. " at " .. cancellation.cancelledAt
    end
    if cancellation.legalHold == true then
      text = text .. "; purge postponed by a legal hold"
    elseif cancellation.purgeAt ~= nil then
      text = text .. "; logs exportable until the purge at " .. cancellation.purgeAt
    end
  end
  hs.message = text
  return hs
end
if phase == "Purging" then
  hs.status = "Progressing"
  hs.message = "Purging: the tenant's namespace and data are being deleted"
  return hs
end
if phase == "Purged" then
  hs.status = "Progressing"
  hs.message = "Purged: the purge receipt is written; the object goes away"
  return hs
end

-- A status written for an older spec says nothing about the current one.
local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
if generation ~= nil then
  if status.observedGeneration == nil or status.observedGeneration < generation then
    hs.status = "Progressing"
    hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
    return hs
  end
end

if is_true("Stalled") then
  hs.status = "Degraded"
  hs.message = condition_text(conditions["Stalled"])
  return hs
end
if phase == "Degraded" then
  hs.status = "Degraded"
  if conditions["Ready"] ~= nil then
    hs.message = condition_text(conditions["Ready"])
  else
    hs.message = "Degraded"
  end
  return hs
end
if phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = "Suspended: spec.suspended is true, the gateway is scaled to zero"
  return hs
end
if is_true("Reconciling") then
  hs.status = "Progressing"
  hs.message = condition_text(conditions["Reconciling"])
  return hs
end

local ready = conditions["Ready"]
if ready ~= nil and ready.status == "True" then
  if ready.observedGeneration ~= nil and generation ~= nil and ready.observedGeneration < generation then
    hs.status = "Progressing"
    hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
    return hs
  end
  hs.status = "Healthy"
  if status.proxyEndpoint ~= nil then
    hs.message = "Ready: proxy at " .. status.proxyEndpoint
  else
    hs.message = condition_text(ready)
  end
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = condition_text(ready)
elseif phase ~= nil then
  hs.message = "Phase " .. phase
else
  hs.message = "Waiting for the Ready condition"
end
return hs
