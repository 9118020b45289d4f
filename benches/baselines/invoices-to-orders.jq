# The jq baseline of `ml-connector bench mapping`: the stock invoices-to-orders pipeline
# (mappings/business-central-to-mailchimp/pipelines/invoices-to-orders.yaml) written by hand in
# jq, one JSON line in, one out: {"key", "method", "path", "body"} or {"filtered": true}.
# jq has no SHA-256, so there is no payload hash; amounts are binary floats (exact for the
# two-decimal amounts Business Central writes).
#
#   jq -c --argjson vars "$(cat vars.json)" -f invoices-to-orders.jq invoices.jsonl > out.jsonl

def trim: sub("^\\s+"; "") | sub("\\s+$"; "");
def email: trim | ascii_downcase
  | if test("^[^@\\s.][^@\\s]*@[^@\\s.]+(\\.[^@\\s.]+)+$") then . else error("`\(.)` is not a valid email address") end;
def decimal: (. * 100) as $x
  | (if $x < 0 then -(((-$x) + 0.5) | floor) else (($x + 0.5) | floor) end) / 100;
def iso8601: if test("^\\d{4}-\\d{2}-\\d{2}$") then . + "T00:00:00Z" else . end;

# A record that cannot be mapped becomes {"error"}, as the engine dead-letters it.
try (
  if (.status == "Open" or .status == "Paid" or .status == "Canceled") and ((.email // "") | trim) != "" then
    ("inv-\(.number)") as $id
    | {
        key: $id,
        method: "PUT",
        path: "/ecommerce/stores/\($vars.store_id)/orders/\($id)",
        body: {
          id: $id,
          customer: {id: .customerNumber, email_address: (.email | email), opt_in_status: false},
          currency_code: (if (.currencyCode // "") == "" then $vars.default_currency else .currencyCode end),
          order_total: (.totalAmountIncludingTax | decimal),
          tax_total: (.totalTaxAmount | decimal),
          discount_total: (.discountAmount | decimal),
          processed_at_foreign: (.invoiceDate | iso8601),
          financial_status: (if .status == "Paid" then "paid" elif .status == "Canceled" then "cancelled" else "pending" end),
          lines: [
            .salesInvoiceLines[] | select(.lineType == "Item")
            | {
                id: (.sequence | tostring),
                product_id: .lineObjectNumber,
                product_variant_id: .lineObjectNumber,
                product_title: .description,
                quantity: (.quantity | floor),
                price: (.amountIncludingTax | decimal),
                discount: (.discountAmount | decimal)
              }
          ]
        }
      }
  else
    {filtered: true}
  end
) catch {error: .}
