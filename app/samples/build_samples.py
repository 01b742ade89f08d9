"""Regenerate the binary sample documents shipped with Lantern.

Usage::

    python -m app.samples.build_samples            # write into app/samples/
    python -m app.samples.build_samples --out DIR  # write somewhere else
    python -m app.samples.build_samples --check    # fail if committed files are stale

Produces ``employee_handbook.pdf`` (fpdf2) and ``it_security_policy.docx``
(python-docx) for the fictional company Northwind Lumen Ltd. All text lives in
this module; ``onboarding_guide.md`` and ``README.md`` are hand-written sibling
files that must stay consistent with the facts below.

Output is deterministic: fixed creation/modification dates, fixed producer, and
fixed ZIP entry timestamps, so re-running yields byte-identical files (for a
given fpdf2 / python-docx version).

Each handbook section starts on its own, fixed page (section N -> page N + 1,
the cover/contents is page 1). The build fails if a section overflows its page,
so page numbers cited in README.md stay stable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PDF_NAME = "employee_handbook.pdf"
DOCX_NAME = "it_security_policy.docx"

COMPANY = "Northwind Lumen Ltd."
DOMAIN = "northwindlumen.example"
FIXED_DATE = (2026, 1, 1, 0, 0, 0)  # UTC; used for all document metadata

# --------------------------------------------------------------------------- #
# Employee handbook content (latin-1 only: core font Helvetica)
# Block kinds: ("h2", text) ("p", text) ("bullets", [text]) ("table", widths,
# header, rows) ("note", text). "p" and "bullets" accept **bold** markdown.
# --------------------------------------------------------------------------- #

HANDBOOK_TITLE = "Northwind Lumen Ltd. - Employee Handbook 2026"
HANDBOOK_VERSION = "Version 2026.1 - effective 1 January 2026"

HANDBOOK_SECTIONS: list[tuple[str, list[tuple[Any, ...]]]] = [
    (
        "1. Welcome and Company Values",
        [
            ("h2", "Welcome to Northwind Lumen"),
            (
                "p",
                "Northwind Lumen Ltd. designs software and building sensors that help "
                "offices, schools and hospitals use less energy. The company was founded "
                "in 2011 and today employs around 420 people at our head office, Lumen "
                "House in Manchester, and at our engineering studio in Edinburgh. Our "
                "flagship product, the Lumen Building Platform, monitors more than 3,000 "
                "buildings across the UK and Ireland.",
            ),
            (
                "p",
                '"Whether you joined us this week or ten years ago, this handbook is the '
                "single place to find out how we work and what you can expect from us. "
                'If something is unclear, ask - that is exactly what we want you to do." '
                "- Helena Marsh, Chief Executive Officer",
            ),
            ("h2", "Our values"),
            (
                "bullets",
                [
                    "**Clarity** - say what you mean, write things down, and make "
                    "decisions easy to find.",
                    "**Ownership** - if you see a problem, you own it until it has a named owner.",
                    "**Care** - for our customers, for each other and for the energy "
                    "our customers' buildings use.",
                    "**Curiosity** - measure first, ask why, and share what you learn.",
                ],
            ),
            ("h2", "About this handbook"),
            (
                "p",
                "This handbook applies to all employees of Northwind Lumen Ltd. employed "
                "in the United Kingdom. It is owned by the People Team and reviewed every "
                "January. If anything in this handbook conflicts with your employment "
                "contract, your contract takes precedence. IT and information-security "
                "rules are set out separately in the IT & Security Policy (NWL-SEC-001).",
            ),
            ("h2", "Key contacts"),
            (
                "table",
                (0.30, 0.40, 0.30),
                ("Team", "Contact", "Phone / extension"),
                [
                    ("People Team (HR)", f"hr@{DOMAIN}", "ext. 2200"),
                    ("IT Service Desk (Lighthouse)", f"servicedesk@{DOMAIN}", "ext. 4357"),
                    ("Finance - expenses", f"expenses@{DOMAIN}", "ext. 2300"),
                    ("Security hotline (24/7)", f"security@{DOMAIN}", "+44 20 7946 0999"),
                    ("Speak Up line (anonymous)", f"ethics@{DOMAIN}", "0808 157 0420"),
                ],
            ),
            ("h2", "Systems you will use"),
            (
                "bullets",
                [
                    "**Beacon** - the HR portal: time off, sickness, benefits, reviews "
                    "and personal details.",
                    "**Tally** - expense claims and corporate card reconciliation.",
                    "**TripDesk** - the company travel booking portal.",
                    "**Lighthouse** - the IT Service Desk ticketing system.",
                    "**Lumen ID** - single sign-on for all company systems.",
                ],
            ),
        ],
    ),
    (
        "2. Working Hours and Remote Work",
        [
            ("h2", "Working hours"),
            (
                "p",
                "The standard full-time working week is 37.5 hours, Monday to Friday, "
                "plus an unpaid lunch break. Core hours are 10:00 to 16:00 UK time: "
                "during core hours you are expected to be available for meetings and "
                "messages. Outside core hours you may organise your day flexibly between "
                "07:00 and 19:00, as agreed with your manager.",
            ),
            ("h2", "Hybrid working"),
            (
                "bullets",
                [
                    "Employees on hybrid contracts work at least 2 days per week from a "
                    "company office.",
                    "Tuesday and Thursday are anchor days: every team is in the office on "
                    "those days, so plan workshops and team meetings for them.",
                    "Lumen House (Manchester) is open 07:00 to 20:00, Monday to Friday. "
                    "Entry is by personal security badge; visitors must be signed in at "
                    "reception.",
                    "Desks are booked through the Beacon app; book by 17:00 the day before.",
                ],
            ),
            ("h2", "Fully remote contracts"),
            (
                "p",
                "A fully remote contract must be approved by your department head and the "
                "People Team, and is reviewed once a year. Remote employees are still "
                "expected to attend the quarterly all-hands meeting in Manchester; travel "
                "costs are reimbursed under section 5.",
            ),
            ("h2", "Working from abroad"),
            (
                "p",
                "You may work from outside the UK for up to 20 working days per calendar "
                "year. Submit a Work Abroad request in Beacon at least 10 working days "
                "before you travel. Some countries are excluded for legal or security "
                "reasons; the IT & Security Policy explains which devices and connections "
                "you may use while abroad.",
            ),
            ("h2", "Home office allowance"),
            (
                "p",
                "Every new employee may claim a one-off home office allowance of up to "
                "£400 within their first 3 months, for a chair, desk or monitor. Claim it "
                "through Tally with itemised receipts.",
            ),
            ("h2", "Overtime, time off in lieu and on-call"),
            (
                "bullets",
                [
                    "Salaried employees are not paid for overtime. Work outside normal "
                    "hours that your manager approved in advance (for example a weekend "
                    "release) earns time off in lieu (TOIL), hour for hour.",
                    "TOIL must be taken within 3 months of the date it was earned, "
                    "otherwise it lapses.",
                    "Employees on an on-call rota receive an on-call allowance of £250 for "
                    "each week-long rota, plus TOIL for every call-out.",
                    "Employees working on client projects record their time in Beacon "
                    "every week by Friday 17:00.",
                ],
            ),
        ],
    ),
    (
        "3. Paid Time Off",
        [
            ("h2", "Vacation entitlement"),
            (
                "p",
                "All full-time employees, including new employees, receive 25 days of "
                "paid vacation per leave year, in addition to the 8 UK bank holidays. "
                "Part-time employees receive a pro-rata entitlement. After 5 years of "
                "continuous service your entitlement rises to 27 days per leave year.",
            ),
            ("h2", "Leave year and accrual"),
            (
                "bullets",
                [
                    "The leave year runs from 1 January to 31 December.",
                    "Vacation accrues monthly at 2.08 days per month of service.",
                    "If you join part-way through the year, your entitlement for that first "
                    "year is pro-rated from your start date.",
                    "You may take vacation as soon as it has accrued, including during probation.",
                ],
            ),
            ("h2", "Carry-over"),
            (
                "p",
                "You may carry over up to 5 unused vacation days into the next leave "
                "year. Carried-over days must be used by 31 March, otherwise they are "
                "forfeited. Any unused days above the 5-day limit are lost on 31 December "
                "unless the People Team has agreed in writing that business needs "
                "prevented you from taking them.",
            ),
            ("h2", "How to request time off"),
            (
                "bullets",
                [
                    "Submit every request in Beacon under Time Off > New Request; your "
                    "manager is notified automatically.",
                    "Give at least 5 working days' notice for requests of up to 2 days, "
                    "and at least 4 weeks' notice for requests of 5 or more consecutive "
                    "working days.",
                    "Managers approve or decline requests within 3 working days.",
                    "Taking more than 15 consecutive working days needs the approval of "
                    "your department head.",
                    "The Finance team does not take vacation during the first 5 working "
                    "days of each quarter (quarter-end close).",
                ],
            ),
            ("h2", "Other paid leave"),
            (
                "table",
                (0.34, 0.22, 0.44),
                ("Type of leave", "Paid days", "How to request"),
                [
                    ("Bereavement (close family)", "5 days", "Tell your manager; record in Beacon"),
                    ("Moving house", "1 day per year", "Beacon, Time Off > Other"),
                    ("Volunteering", "2 days per year", "Beacon, at least 2 weeks ahead"),
                    ("Jury service", "Full pay", "Send the summons to the People Team"),
                    (
                        "Emergency dependants leave",
                        "3 days per year",
                        "Tell your manager the same day",
                    ),
                ],
            ),
        ],
    ),
    (
        "4. Sick Leave and Parental Leave",
        [
            ("h2", "Reporting sickness"),
            (
                "bullets",
                [
                    "If you are too ill to work, tell your manager by phone or Lumen Chat "
                    "before 10:00 on the first day of absence. An email alone is not "
                    "enough.",
                    "Keep your manager updated on each further day of absence unless you "
                    "have a fit note.",
                    "Record the absence in Beacon (Time Off > Sickness) on the day you return.",
                ],
            ),
            ("h2", "Evidence and sick pay"),
            (
                "bullets",
                [
                    "You may self-certify absences of up to 7 calendar days.",
                    "A fit note from a doctor is required from the 8th calendar day of "
                    "absence; upload it to Beacon.",
                    "Company sick pay: full pay for up to 20 working days of sickness in "
                    "any rolling 12-month period. After that, Statutory Sick Pay applies.",
                    "After an absence of 5 working days or more, you and your manager hold "
                    "a short return-to-work conversation.",
                    "After 4 weeks of continuous absence, we may refer you to occupational "
                    "health to plan support for your return.",
                ],
            ),
            ("h2", "Parental leave"),
            (
                "p",
                "Parental leave is available to employees with at least 6 months of "
                "continuous service by the expected week of birth or adoption placement. "
                "The same terms apply to birth and adoptive parents.",
            ),
            (
                "table",
                (0.30, 0.70),
                ("Caregiver", "Leave and pay"),
                [
                    (
                        "Primary caregiver",
                        "Up to 52 weeks: 26 weeks at full pay, 13 weeks at statutory pay, "
                        "13 weeks unpaid",
                    ),
                    (
                        "Secondary caregiver",
                        "6 weeks at full pay, taken within 12 months of the birth or placement",
                    ),
                ],
            ),
            ("h2", "Notice, keeping in touch and returning"),
            (
                "bullets",
                [
                    "Tell the People Team at least 15 weeks before the expected week of "
                    "birth, or within 7 days of being matched with a child for adoption.",
                    "You may work up to 10 paid keeping-in-touch (KIT) days during "
                    "parental leave without ending it.",
                    "Phased return: for your first 4 weeks back you may work 80% of your "
                    "normal hours on full pay.",
                    "Shared parental leave is available under the statutory scheme; ask "
                    "the People Team for the calculation.",
                ],
            ),
        ],
    ),
    (
        "5. Expenses and Travel",
        [
            ("h2", "Submitting expenses"),
            (
                "bullets",
                [
                    "Submit all expense claims in Tally within 30 days of the date the "
                    "expense was incurred. Older claims are rejected unless Finance "
                    "approves an exception.",
                    "Attach an itemised receipt (a photo is fine) for every item over £15.",
                    "Your line manager approves every claim. Claims over £1,000 also need "
                    "approval from the Chief Financial Officer, David Okafor.",
                    "Claims approved by the 10th of the month are paid with that month's "
                    "salary on the 25th.",
                ],
            ),
            ("h2", "Booking travel"),
            (
                "p",
                "Book all flights, rail tickets and hotels through TripDesk, the company "
                "travel portal. Travel outside the UK must be approved by your department "
                "head at least 14 days before departure.",
            ),
            ("h2", "Expense limits"),
            (
                "table",
                (0.36, 0.24, 0.40),
                ("Category", "Limit", "Notes"),
                [
                    ("Hotel - London", "£180 per night", "Including breakfast"),
                    ("Hotel - rest of UK", "£120 per night", "Including breakfast"),
                    ("Hotel - outside the UK", "£200 per night", "Book via TripDesk"),
                    ("Meals per diem - UK", "£40 per day", "Overnight trips only"),
                    ("Meals per diem - outside the UK", "£65 per day", "Overnight trips only"),
                    ("Mileage (own car)", "45p per mile", "First 10,000 business miles a year"),
                    ("Client entertainment", "£75 per person", "Pre-approval by your manager"),
                ],
            ),
            ("h2", "Travel class"),
            (
                "bullets",
                [
                    "Flights: economy class for flights under 6 hours; premium economy for "
                    "flights of 6 hours or more. Business class needs CEO approval.",
                    "Rail: standard class.",
                    "Taxis: only when public transport is impractical, or after 21:00.",
                ],
            ),
            ("h2", "Not reimbursed"),
            (
                "p",
                "Alcohol (except pre-approved client entertainment), traffic and parking "
                "fines, seat or room upgrades, minibar items and personal travel "
                "insurance. All business trips are covered by the company travel "
                "insurance policy NWL-TRV-2026; its emergency assistance line is "
                "+44 20 7946 0777 (24/7).",
            ),
            ("h2", "Corporate cards"),
            (
                "p",
                "Employees who travel on business more than 6 times a year may apply for "
                "a corporate card through Tally. Card transactions must be reconciled in "
                "Tally by the 5th working day of the following month.",
            ),
        ],
    ),
    (
        "6. Code of Conduct",
        [
            ("h2", "Respect and equal opportunity"),
            (
                "p",
                "We treat colleagues, customers and suppliers with respect. Northwind "
                "Lumen has zero tolerance for harassment, bullying and discrimination on "
                "any ground, including age, disability, gender identity, marriage, "
                "pregnancy, race, religion, sex and sexual orientation.",
            ),
            ("h2", "Gifts and hospitality"),
            (
                "bullets",
                [
                    "You may accept gifts or hospitality worth up to £50.",
                    "Anything worth more than £50 must be declared in the Gifts Register in "
                    "Beacon within 5 working days.",
                    "Never accept cash or gift vouchers, and never accept anything from a "
                    "supplier that is taking part in an active tender.",
                ],
            ),
            ("h2", "Conflicts of interest and outside work"),
            (
                "p",
                "Declare any potential conflict of interest in Beacon as soon as you "
                "become aware of it. A second job, a company directorship or paid "
                "consulting work requires written approval from your manager before you "
                "start.",
            ),
            ("h2", "Anti-bribery"),
            (
                "p",
                "Offering, paying, requesting or accepting a bribe is a criminal offence "
                "and gross misconduct. Facilitation payments are not allowed in any "
                "country.",
            ),
            ("h2", "Confidentiality and public communication"),
            (
                "bullets",
                [
                    "Protect confidential information as described in the IT & Security "
                    "Policy (data classification levels).",
                    f"Do not speak on behalf of the company in public or on social media. "
                    f"Forward all press enquiries to press@{DOMAIN}.",
                    "Do not work under the influence of alcohol or drugs.",
                ],
            ),
            ("h2", "Speak Up"),
            (
                "p",
                "If you see something that seems wrong, raise it with your manager, the "
                f"People Team, or ethics@{DOMAIN}. You can also report anonymously to the "
                "Speak Up line on 0808 157 0420, which is available 24/7 and run by an "
                "independent provider. We do not tolerate retaliation against anyone who "
                "raises a concern in good faith.",
            ),
            ("h2", "Training and breaches"),
            (
                "p",
                "Every employee completes the Code of Conduct training in Beacon each year "
                "by 31 March; new employees complete it within their first 30 days. "
                "Breaches of this code may lead to disciplinary action, up to and "
                "including dismissal.",
            ),
        ],
    ),
    (
        "7. Benefits",
        [
            ("h2", "Private health plan"),
            (
                "p",
                "Our health plan is provided by Meridian Health. Choose one of three "
                "levels of cover:",
            ),
            (
                "table",
                (0.14, 0.30, 0.19, 0.19, 0.18),
                (
                    "Plan",
                    "Who is covered",
                    "Employee cost per month",
                    "Outpatient limit per year",
                    "Dental and optical",
                ),
                [
                    ("Essential", "Employee only", "£0", "£1,000", "Not included"),
                    ("Plus", "Employee and partner", "£28", "£2,500", "Included"),
                    ("Family", "Employee, partner and children", "£64", "£5,000", "Included"),
                ],
            ),
            (
                "note",
                "The company pays the rest of the premium. The employee cost is deducted "
                "from your monthly salary before tax.",
            ),
            ("h2", "Enrolment"),
            (
                "p",
                "Enrol in Beacon (Benefits > Health) within 30 days of your start date. "
                "If you miss this window you must wait for the annual open enrolment in "
                "November; changes then take effect on 1 January. Life events such as "
                "marriage or the birth of a child allow a change within 30 days of the "
                "event.",
            ),
            ("h2", "Pension and insurance"),
            (
                "bullets",
                [
                    "Pension: the company contributes 6% of your basic salary when you "
                    "contribute at least 4%. You are enrolled automatically in your first "
                    "month.",
                    "Life assurance: 4 times your basic salary, from your first day.",
                    "Income protection: 75% of your salary after 26 weeks of continuous "
                    "absence due to illness.",
                ],
            ),
            ("h2", "Other benefits"),
            (
                "bullets",
                [
                    "Learning budget: £1,000 per employee per year, plus 5 learning days. "
                    "Request courses and books in Beacon.",
                    "Employee Assistance Programme: free, confidential counselling 24/7 on "
                    "0808 157 0555.",
                    "Cycle to work scheme: bicycles and equipment up to £2,500, paid "
                    "through salary sacrifice.",
                    "Eye tests for screen users: reimbursed up to £25 through Tally.",
                    "Referral bonus: £2,000 when someone you referred passes probation.",
                    "Payday: salaries are paid on the 25th of each month, or the last "
                    "working day before it.",
                ],
            ),
        ],
    ),
    (
        "8. Performance Reviews",
        [
            ("h2", "Probation"),
            (
                "p",
                "New employees have a probation period of 6 months, with formal review "
                "meetings at 3 months and at 6 months. Probation can be extended once, by "
                "up to 3 months.",
            ),
            ("h2", "Regular check-ins"),
            (
                "p",
                "Every employee has a one-to-one with their manager at least every two "
                "weeks. Goals are agreed in January and recorded in Beacon.",
            ),
            ("h2", "Annual review timeline"),
            (
                "table",
                (0.30, 0.70),
                ("When", "What happens"),
                [
                    ("By 15 January", "Self-assessment for the previous year submitted in Beacon"),
                    (
                        "By 31 January",
                        "Manager reviews completed, including 3 to 5 peer (360) comments",
                    ),
                    ("January", "Goals for the new year agreed and recorded in Beacon"),
                    ("February", "Calibration of ratings across each department"),
                    ("By 15 March", "Ratings and pay outcomes communicated"),
                    ("1 April", "Salary changes take effect"),
                    ("July", "Mid-year check-in with your manager"),
                ],
            ),
            ("h2", "Rating scale"),
            (
                "table",
                (0.12, 0.22, 0.66),
                ("Rating", "Label", "Meaning"),
                [
                    ("5", "Exceptional", "Far exceeded all goals; a role model for our values"),
                    ("4", "Strong", "Exceeded most goals"),
                    ("3", "Solid", "Met goals; the expected level for an experienced employee"),
                    ("2", "Developing", "Met some goals; needs support in specific areas"),
                    (
                        "1",
                        "Unsatisfactory",
                        "Did not meet goals; a performance improvement plan is agreed",
                    ),
                ],
            ),
            ("h2", "Promotions and improvement plans"),
            (
                "bullets",
                [
                    "Promotions are considered twice a year, in April and October.",
                    "A performance improvement plan (PIP) lasts 60 days, with weekly "
                    "check-ins with your manager and a People Team partner.",
                ],
            ),
        ],
    ),
    (
        "9. Leaving the Company",
        [
            ("h2", "Resigning"),
            (
                "p",
                "To resign, tell your manager and the People Team in writing (email is "
                "fine), then submit your resignation in Beacon. Your notice period starts "
                "on the day after we receive your written resignation.",
            ),
            ("h2", "Notice periods"),
            (
                "table",
                (0.46, 0.27, 0.27),
                ("Situation", "Notice you give", "Notice we give"),
                [
                    ("During probation", "1 week", "1 week"),
                    ("After probation", "1 month", "1 month"),
                    ("Managers (grade M1 and above)", "3 months", "3 months"),
                ],
            ),
            (
                "note",
                "Where the statutory minimum notice (1 week per completed year of "
                "service, up to 12 weeks) is longer, the statutory minimum applies to "
                "notice we give.",
            ),
            ("h2", "Holiday and final pay"),
            (
                "p",
                "Accrued but unused vacation is paid with your final salary. Vacation "
                "taken beyond what you accrued is deducted from your final salary. We may "
                "place you on garden leave for all or part of your notice period.",
            ),
            ("h2", "Returning equipment and access"),
            (
                "bullets",
                [
                    "Return your laptop, security badge and security key within 5 working "
                    "days after your last day. Remote employees receive a prepaid courier "
                    "box from the IT Service Desk.",
                    "Access to Lumen ID and all company systems is disabled at 17:00 UK "
                    "time on your last working day.",
                    "Copy personal files you want to keep before your last day; do not "
                    "take any company data with you.",
                ],
            ),
            ("h2", "After you leave"),
            (
                "bullets",
                [
                    "Health plan cover ends on the last day of the month in which your "
                    "employment ends.",
                    "You are invited to an optional exit interview with the People Team in "
                    "your last week.",
                    f"References: the People Team provides factual references only (dates "
                    f"of employment and job title). Request them via hr@{DOMAIN}.",
                    "Your confidentiality obligations continue after you leave.",
                ],
            ),
        ],
    ),
]

# --------------------------------------------------------------------------- #
# IT & Security Policy content
# Block kinds: ("h1", text) ("h2", text) ("p", text) ("bullets", [text])
# ("table", header, rows)
# --------------------------------------------------------------------------- #

POLICY_TITLE = "IT & Security Policy"
POLICY_BLOCKS: list[tuple[Any, ...]] = [
    ("h1", "1. Purpose and Scope"),
    (
        "p",
        f"This policy sets the minimum information-security rules at {COMPANY} and "
        "applies to all employees, contractors and temporary staff, and to every "
        "device, account and system used to access company data, wherever you work. "
        "Breaking this policy may lead to disciplinary action under the Code of "
        "Conduct in the Employee Handbook.",
    ),
    ("h2", "1.1 Roles and contacts"),
    (
        "bullets",
        [
            "Policy owner: Tomasz Kowalczyk, Chief Information Security Officer (CISO).",
            "IT operations: Samir Haddad, Head of IT.",
            f"IT Service Desk: Lighthouse portal, servicedesk@{DOMAIN}, ext. 4357, "
            "staffed 08:00 to 18:00 UK time on working days.",
            f"Security Operations (24/7): security@{DOMAIN}, security hotline +44 20 7946 0999.",
            f"Data Protection Officer: Amara Nwosu, dpo@{DOMAIN}.",
        ],
    ),
    ("h1", "2. Accounts and Access"),
    (
        "p",
        "Every person has one personal Lumen ID account, which is the single sign-on "
        "for email, Beacon, Tally, Lighthouse, Lumen Chat and all other company "
        "systems. Accounts are personal: never share your account or let anyone else "
        "use your session.",
    ),
    (
        "bullets",
        [
            "Access follows least privilege: request only the access your role needs.",
            "Additional access is requested in Lighthouse and approved by your line "
            "manager and the system owner.",
            "Managers review their team's access every quarter.",
            "Accounts are disabled at 17:00 UK time on an employee's last working day.",
            "New starters complete the Information Security Essentials course in Beacon "
            "in their first week, and everyone completes a refresher every year.",
        ],
    ),
    ("h1", "3. Passwords and Authentication"),
    ("h2", "3.1 Password requirements"),
    (
        "table",
        ("Requirement", "Standard user accounts", "Privileged (admin) accounts"),
        [
            ("Minimum length", "14 characters", "20 characters"),
            (
                "Composition",
                "Passphrase of at least 3 words recommended; no forced symbol rules",
                "Generated by Keyring",
            ),
            (
                "Breached-password check",
                "Checked at every change; known-breached passwords are rejected",
                "Same",
            ),
            (
                "Password history",
                "Last 12 passwords cannot be reused",
                "Last 24 passwords cannot be reused",
            ),
            (
                "Scheduled rotation",
                "None - change only when compromise is suspected",
                "Every 90 days",
            ),
            (
                "Account lockout",
                "10 failed attempts - locked for 15 minutes",
                "5 failed attempts - locked until Service Desk unlocks",
            ),
            ("Storage", "Keyring password manager only", "Keyring privileged vault only"),
        ],
    ),
    (
        "p",
        'Passwords must not contain your name, your username or the word "Northwind" '
        'or "Lumen". If you suspect a password has been exposed, change it immediately '
        "and report it to Security Operations. Service accounts use passwords of at "
        "least 32 characters, stored in the Keyring privileged vault and rotated every "
        "180 days.",
    ),
    ("h2", "3.2 Multi-factor authentication (MFA)"),
    (
        "bullets",
        [
            "MFA is required for every Lumen ID account, for the LumenGate VPN and for "
            "all remote access. There are no exceptions.",
            "Approved methods: push notification in the Lumen Authenticator app, or a "
            "FIDO2 security key.",
            "SMS and voice-call codes are not allowed as MFA methods.",
            "Administrators must use a FIDO2 security key for privileged accounts.",
            "Never approve an MFA prompt you did not start; report unexpected prompts to "
            "Security Operations.",
        ],
    ),
    ("h2", "3.3 Password manager"),
    (
        "p",
        "Keyring is the company password manager. Every employee receives a Keyring "
        "account on their first day. Store all work passwords in Keyring; do not save "
        "work passwords in your browser, in documents or on paper.",
    ),
    ("h1", "4. Device Security"),
    ("h2", "4.1 Company laptops and encryption"),
    (
        "bullets",
        [
            "Full-disk encryption is mandatory on every company laptop: BitLocker on "
            "Windows and FileVault on macOS. Recovery keys are escrowed in Lumen Device "
            "Manager.",
            "Every laptop must be enrolled in Lumen Device Manager (the company MDM) "
            "before it can access company data.",
            "Screens lock automatically after 5 minutes of inactivity; lock your screen "
            "whenever you leave your device.",
            "Operating-system updates must be installed within 14 days of release; "
            "critical security patches within 72 hours.",
            "Endpoint protection must stay enabled; never disable or uninstall it.",
        ],
    ),
    ("h2", "4.2 Mobile and personal devices"),
    (
        "bullets",
        [
            "Personal phones may be used for email, Lumen Chat and the Lumen "
            "Authenticator app only, through the managed work profile installed by "
            "Lumen Device Manager.",
            "Personal laptops and tablets must not be used to access company data.",
            "USB storage devices are blocked on company laptops; use LumenDrive to share files.",
        ],
    ),
    ("h2", "4.3 Lost or stolen devices"),
    (
        "p",
        "Report a lost or stolen laptop, phone or security key to the IT Service Desk "
        "(ext. 4357) or, outside Service Desk hours, to the security hotline, within 1 "
        "hour of noticing. The device will be locked and, if necessary, wiped remotely.",
    ),
    ("h1", "5. Network and Remote Access"),
    ("h2", "5.1 LumenGate VPN"),
    (
        "bullets",
        [
            "Use the LumenGate VPN to reach internal systems from outside a company "
            "office. The VPN is always-on on company laptops and requires MFA.",
            "VPN sessions disconnect automatically after 12 hours and must be re-authenticated.",
            "Split tunnelling is disabled: all traffic goes through the VPN while it is connected.",
            "On public or hotel Wi-Fi, the VPN must be connected before any other activity.",
            "When working from abroad (see the Employee Handbook), keep the VPN "
            "connected and use only your company laptop.",
        ],
    ),
    ("h2", "5.2 Office networks"),
    (
        "bullets",
        [
            "NWL-Corp is the corporate Wi-Fi; only enrolled company devices can join it.",
            "NWL-Guest is for visitors and personal devices; it has internet access "
            "only. Guest passwords change every Monday.",
            "Do not connect personal routers, access points or network switches to the "
            "office network.",
        ],
    ),
    ("h1", "6. Acceptable Use"),
    (
        "p",
        "Company systems are provided for business use. Limited personal use is "
        "allowed if it does not interfere with your work or break this policy. You "
        "must not:",
    ),
    (
        "bullets",
        [
            "access, store or send illegal, offensive or sexually explicit material;",
            "use company systems for personal commercial activity or cryptocurrency mining;",
            "upload Confidential or Restricted data to personal email, personal cloud "
            "storage or public AI tools;",
            "bypass or disable security controls, including the VPN and endpoint protection;",
            "forward company email automatically to an external address.",
        ],
    ),
    (
        "p",
        "Company systems are monitored for security purposes in line with our privacy "
        "notice. Only approved AI assistants listed in the Self Service catalogue may "
        "be used with Internal data.",
    ),
    ("h1", "7. Data Classification"),
    (
        "p",
        "All company information belongs to one of four classification levels. If you "
        "are unsure, treat information as Confidential and ask the data owner.",
    ),
    (
        "table",
        ("Level", "Examples", "Handling rules"),
        [
            (
                "Public",
                "Website content, published case studies, press releases",
                "No restrictions",
            ),
            (
                "Internal",
                "Org charts, internal wiki pages, this policy",
                "Employees and contractors only; do not share outside the company",
            ),
            (
                "Confidential",
                "Customer contracts, building energy data, source code, pricing",
                "Share only with people who need it; encrypt when sent outside the company",
            ),
            (
                "Restricted",
                "Personal data of employees or customers, payroll, security keys, M&A plans",
                "Named individuals only; encrypted at rest and in transit; never on "
                "removable media or printed without approval",
            ),
        ],
    ),
    (
        "p",
        "Label documents with their classification in the header or file name. "
        "Restricted data may only be stored in systems approved by the CISO.",
    ),
    ("h1", "8. Software Installation"),
    (
        "bullets",
        [
            "Employees do not have local administrator rights by default.",
            "Install software only from the Self Service catalogue in Lumen Device "
            "Manager; catalogue apps are pre-approved.",
            "Software that is not in the catalogue, including browser extensions and "
            "free tools, needs a Software Request ticket in Lighthouse. It is approved by "
            "your line manager and the Security team; the target decision time is 5 "
            "working days.",
            "Paid software and cloud services also need a budget owner and must be "
            "bought through Finance; never sign up with a company email address on "
            "your own.",
            "Temporary local administrator rights can be granted for up to 24 hours "
            "through Lighthouse for a specific task.",
        ],
    ),
    ("h1", "9. Backup and Recovery"),
    (
        "p",
        "The IT team backs up company systems on the schedule below. Backups are "
        "encrypted, and a weekly immutable copy is stored off-site in a separate "
        "cloud region. Restores are tested every quarter.",
    ),
    (
        "table",
        ("System", "Backup schedule", "Retention"),
        [
            (
                "Production databases",
                "Incremental every hour; full backup daily at 01:00 UTC",
                "35 days",
            ),
            ("File shares", "Nightly at 22:00 UTC", "90 days"),
            ("Email and Lumen Chat", "Continuous (provider-managed)", "7 years"),
            (
                "Laptops",
                "User folders sync continuously to LumenDrive",
                "Deleted files recoverable for 30 days",
            ),
            (
                "All systems - monthly archive",
                "Full backup on the first Sunday of each month",
                "12 months",
            ),
        ],
    ),
    (
        "p",
        "Recovery objectives for production systems: recovery point objective (RPO) "
        "1 hour, recovery time objective (RTO) 4 hours. Files saved only on a laptop's "
        "local disk outside LumenDrive are not backed up.",
    ),
    ("h1", "10. Incident Reporting"),
    ("h2", "10.1 How to report"),
    (
        "p",
        "A security incident is any event that could harm the confidentiality, "
        "integrity or availability of company data or systems - for example a "
        "phishing email you clicked, malware, a lost device, or data sent to the wrong "
        "person. Report every suspected incident immediately, and no later than 1 hour "
        "after you discover it.",
    ),
    (
        "bullets",
        [
            f"Call the security hotline on +44 20 7946 0999 (24/7), or email security@{DOMAIN}.",
            "For suspicious emails, use the Report Phish button in your email client; "
            "do not forward the email to colleagues.",
            "Do not try to investigate yourself, and do not switch off an affected "
            "device - disconnect it from the network and wait for instructions.",
            "Personal data breaches are escalated to the Data Protection Officer, who "
            "notifies the regulator within 72 hours where required.",
        ],
    ),
    ("h2", "10.2 Incident severity levels"),
    (
        "table",
        ("Severity", "Examples", "Response time", "Who is notified"),
        [
            (
                "SEV1 - Critical",
                "Ransomware, confirmed breach of Restricted data, production outage "
                "caused by an attack",
                "15 minutes, 24/7",
                "CISO, Head of IT, CEO",
            ),
            (
                "SEV2 - High",
                "Compromised account, malware on a laptop, lost unencrypted device",
                "1 hour, 24/7",
                "CISO, Head of IT",
            ),
            (
                "SEV3 - Medium",
                "Phishing email clicked without credentials entered, policy violation",
                "4 working hours",
                "Security Operations",
            ),
            (
                "SEV4 - Low",
                "Suspicious email reported, not clicked",
                "Next working day",
                "Security Operations",
            ),
        ],
    ),
    ("h1", "11. Exceptions and Review"),
    (
        "p",
        "Exceptions to this policy must be requested in Lighthouse, approved by the "
        "CISO, and last no longer than 6 months. This policy is reviewed every year "
        "in January by the CISO; the next review is due in January 2027.",
    ),
]

POLICY_CONTROL = [
    ("Document ID", "NWL-SEC-001"),
    ("Version", "4.0"),
    ("Effective date", "1 January 2026"),
    ("Owner", "Tomasz Kowalczyk, Chief Information Security Officer"),
    ("Approved by", "Helena Marsh, Chief Executive Officer"),
    ("Classification", "Internal"),
]


# --------------------------------------------------------------------------- #
# Builders
# --------------------------------------------------------------------------- #


def build_pdf(path: Path) -> list[tuple[str, int]]:
    """Write the handbook PDF; return [(section title, page)]."""
    from datetime import UTC, datetime

    from fpdf import FPDF
    from fpdf.fonts import FontFace

    body_size = 10
    lh = 5.0  # body line height (mm)
    accent = (24, 74, 120)

    class HandbookPDF(FPDF):
        def header(self) -> None:
            if self.page_no() == 1:
                return
            self.set_font("Helvetica", "", 8)
            self.set_text_color(110, 110, 110)
            self.cell(0, 5, f"{COMPANY} - Employee Handbook - {HANDBOOK_VERSION}", align="R")
            self.ln(10)
            self.set_text_color(0, 0, 0)

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("Helvetica", "", 8)
            self.set_text_color(110, 110, 110)
            self.cell(0, 5, f"{COMPANY} - Employee Handbook - Internal", align="L")
            self.set_x(self.l_margin)
            self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="R")
            self.set_text_color(0, 0, 0)

    pdf = HandbookPDF(orientation="P", unit="mm", format="A4")
    pdf.set_margins(20, 15, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.alias_nb_pages()
    pdf.set_title(HANDBOOK_TITLE)
    pdf.set_author(f"{COMPANY} People Team")
    pdf.set_subject("Employee handbook: policies, leave, benefits, expenses and conduct")
    pdf.set_keywords("handbook vacation sick leave parental leave expenses benefits conduct")
    pdf.set_creator("Lantern sample builder")
    pdf.set_producer("Lantern sample builder")
    pdf.set_lang("en-GB")
    pdf.set_creation_date(datetime(*FIXED_DATE, tzinfo=UTC))

    def para(text: str) -> None:
        pdf.set_font("Helvetica", "", body_size)
        pdf.multi_cell(0, lh, text, markdown=True, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1.5)

    def bullets(items: list[str]) -> None:
        pdf.set_font("Helvetica", "", body_size)
        for item in items:
            pdf.set_x(pdf.l_margin + 3)
            pdf.cell(4, lh, "-")
            pdf.multi_cell(pdf.epw - 7, lh, item, markdown=True, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(0.8)
        pdf.ln(1)

    def h2(text: str) -> None:
        pdf.ln(1.5)
        pdf.set_font("Helvetica", "B", 11.5)
        pdf.set_text_color(*accent)
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.ln(0.5)

    def note(text: str) -> None:
        pdf.set_font("Helvetica", "I", 8.5)
        pdf.multi_cell(0, 4.2, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1.5)

    def table(
        widths: Sequence[float], header: Sequence[str], rows: Sequence[Sequence[str]]
    ) -> None:
        pdf.set_font("Helvetica", "", 9)
        with pdf.table(
            col_widths=[w * 100 for w in widths],
            text_align="LEFT",
            line_height=4.8,
            padding=1.2,
            borders_layout="SINGLE_TOP_LINE",
            headings_style=FontFace(emphasis="BOLD", color=(255, 255, 255), fill_color=accent),
            cell_fill_color=(235, 241, 247),
            cell_fill_mode="ROWS",
        ) as t:
            for row in (header, *rows):
                r = t.row()
                for value in row:
                    r.cell(value)
        pdf.ln(2.5)

    # Cover page with contents
    pdf.add_page()
    pdf.ln(40)
    pdf.set_font("Helvetica", "B", 30)
    pdf.set_text_color(*accent)
    pdf.cell(0, 14, "Employee Handbook", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 16)
    pdf.cell(0, 9, COMPANY, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("Helvetica", "", 11)
    pdf.cell(0, 7, HANDBOOK_VERSION, new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 7, f"Owner: People Team (hr@{DOMAIN}, ext. 2200)", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(14)
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 8, "Contents", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    page_map = [(title, i + 2) for i, (title, _) in enumerate(HANDBOOK_SECTIONS)]
    for title, page in page_map:
        pdf.cell(pdf.epw - 20, 7.5, title)
        pdf.cell(20, 7.5, f"Page {page}", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    pdf.set_font("Helvetica", "I", 9)
    pdf.multi_cell(
        0,
        4.5,
        "This handbook applies to all employees of Northwind Lumen Ltd. in the United "
        "Kingdom. Classification: Internal. Each section starts on its own page.",
        new_x="LMARGIN",
        new_y="NEXT",
    )

    for (title, blocks), (_, expected_page) in zip(HANDBOOK_SECTIONS, page_map, strict=True):
        pdf.add_page()
        pdf.start_section(title, level=0)
        pdf.set_font("Helvetica", "B", 17)
        pdf.set_text_color(*accent)
        pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_draw_color(*accent)
        pdf.set_line_width(0.6)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + pdf.epw, pdf.get_y())
        pdf.set_text_color(0, 0, 0)
        pdf.ln(3)
        for block in blocks:
            kind = block[0]
            if kind == "h2":
                h2(block[1])
            elif kind == "p":
                para(block[1])
            elif kind == "bullets":
                bullets(block[1])
            elif kind == "note":
                note(block[1])
            elif kind == "table":
                table(*block[1:])
            else:  # pragma: no cover - content error
                raise ValueError(f"unknown block kind {kind!r}")
        if pdf.page != expected_page:
            raise RuntimeError(
                f"section {title!r} overflowed: ends on page {pdf.page}, "
                f"expected {expected_page}; shorten it"
            )

    path.write_bytes(bytes(pdf.output()))
    return page_map


def build_docx(path: Path) -> None:
    import io
    import zipfile
    from datetime import UTC, datetime

    from docx import Document
    from docx.shared import Pt, RGBColor

    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.name = "Calibri"
    normal.font.size = Pt(10.5)

    doc.add_heading(f"{COMPANY} - {POLICY_TITLE}", level=0)

    control = doc.add_table(rows=0, cols=2)
    control.style = "Table Grid"
    for key, value in POLICY_CONTROL:
        cells = control.add_row().cells
        cells[0].text = key
        cells[1].text = value
        cells[0].paragraphs[0].runs[0].bold = True
    doc.add_paragraph()

    def add_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        t = doc.add_table(rows=1, cols=len(header))
        t.style = "Table Grid"
        for cell, text in zip(t.rows[0].cells, header, strict=True):
            cell.text = text
            run = cell.paragraphs[0].runs[0]
            run.bold = True
            run.font.color.rgb = RGBColor(0x18, 0x4A, 0x78)
        for row in rows:
            for cell, text in zip(t.add_row().cells, row, strict=True):
                cell.text = text
        doc.add_paragraph()

    for block in POLICY_BLOCKS:
        kind = block[0]
        if kind == "h1":
            doc.add_heading(block[1], level=1)
        elif kind == "h2":
            doc.add_heading(block[1], level=2)
        elif kind == "p":
            doc.add_paragraph(block[1])
        elif kind == "bullets":
            for item in block[1]:
                doc.add_paragraph(item, style="List Bullet")
        elif kind == "table":
            add_table(block[1], block[2])
        else:  # pragma: no cover - content error
            raise ValueError(f"unknown block kind {kind!r}")

    fixed = datetime(*FIXED_DATE, tzinfo=UTC).replace(tzinfo=None)
    cp = doc.core_properties
    cp.title = f"{COMPANY} - {POLICY_TITLE}"
    cp.subject = (
        "Passwords, MFA, devices, VPN, acceptable use, data classification, incidents, backups"
    )
    cp.author = f"{COMPANY} Information Security"
    cp.last_modified_by = f"{COMPANY} Information Security"
    cp.keywords = "security policy password MFA VPN encryption incident backup"
    cp.category = "Policy"
    cp.comments = "NWL-SEC-001 version 4.0"
    cp.identifier = "NWL-SEC-001"
    cp.version = "4.0"
    cp.language = "en-GB"
    cp.revision = 4
    cp.created = fixed
    cp.modified = fixed
    cp.last_printed = fixed

    # python-docx stamps ZIP entries with the current time; rewrite with a fixed one.
    raw = io.BytesIO()
    doc.save(raw)
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_DATE)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, src.read(info.filename), compresslevel=9)
    path.write_bytes(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    parser.add_argument(
        "--check", action="store_true", help="build to a temp dir and compare with --out"
    )
    args = parser.parse_args(argv)

    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            tmpdir = Path(tmp)
            build_pdf(tmpdir / PDF_NAME)
            build_docx(tmpdir / DOCX_NAME)
            stale = [
                n
                for n in (PDF_NAME, DOCX_NAME)
                if not (args.out / n).exists()
                or (args.out / n).read_bytes() != (tmpdir / n).read_bytes()
            ]
        if stale:
            print("stale samples: " + ", ".join(stale), file=sys.stderr)
            return 1
        print("samples up to date")
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    page_map = build_pdf(args.out / PDF_NAME)
    build_docx(args.out / DOCX_NAME)
    for name in (PDF_NAME, DOCX_NAME):
        p = args.out / name
        print(f"wrote {p} ({p.stat().st_size:,} bytes)")
    for title, page in page_map:
        print(f"  page {page:2d}: {title}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
