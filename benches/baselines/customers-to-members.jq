# The jq baseline of `ml-connector bench mapping`: the stock customers-to-members pipeline
# (mappings/business-central-to-mailchimp/pipelines/customers-to-members.yaml) written by hand in
# jq. jq has no MD5, so it cannot compute the subscriber hash the member's key and path are made
# of: it writes the body only, which is what the bench compares for it.
#
#   jq -c --argjson vars "$(cat vars.json)" -f customers-to-members.jq customers.jsonl > out.jsonl

def trim: sub("^\\s+"; "") | sub("\\s+$"; "");
def email: trim | ascii_downcase
  | if test("^[^@\\s.][^@\\s]*@[^@\\s.]+(\\.[^@\\s.]+)+$") then . else error("`\(.)` is not a valid email address") end;
def split_name: trim
  | if test(",") then index(",") as $i | [(.[$i + 1:] | trim), (.[:$i] | trim)]
    else [splits("\\s+")] as $w | [($w[0] // ""), ($w[1:] | join(" "))] end;
def present: (. // "") != "";

# A record that cannot be mapped becomes {"error"}, as the engine dead-letters it.
try (
  if ((.email // "") | trim) != "" and .blocked != "All" then
    {
      key: null,
      method: "PUT",
      path: null,
      body: {
        email_address: (.email | email),
        status_if_new: $vars.status_if_new,
        merge_fields: {
          FNAME: (if .type == "Person" then (.displayName | split_name | .[0]) else "" end),
          LNAME: (if .type == "Person" then (.displayName | split_name | .[1]) else "" end),
          COMPANY: (if .type == "Company" then .displayName else "" end),
          PHONE: .phoneNumber,
          ADDRESS: (
            if (.addressLine1 | present) and (.city | present) and (.state | present) and (.postalCode | present) then
              {addr1: .addressLine1, addr2: .addressLine2, city: .city, state: .state, zip: .postalCode, country: .country}
            else "" end
          )
        }
      }
    }
  else
    {filtered: true}
  end
) catch {error: .}
